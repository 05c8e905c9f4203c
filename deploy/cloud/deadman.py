"""The dead-man switch every machine the layer launches carries.

A machine that outlives its hub (the hub VM replaced, the platform half destroyed, a
launch whose record was lost) would run, and bill, forever. So the machines layer puts a
watchdog in front of the machine's own user data: a unit that asks the hub's URL every
`every_seconds` and powers the machine off once no answer came for `after_seconds`.
The machine is launched with `InstanceInitiatedShutdownBehavior=terminate` (AWS), so a
power-off from inside is a termination: nothing is left to pay for.

Any HTTP answer below 500 counts as alive (a login redirect, a 403 are the hub talking);
a refused or timed-out connection and a 5xx (a proxy with no hub behind it) do not.
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass

DEFAULT_AFTER_SECONDS = 15 * 60
UNIT = "graticule-deadman.service"
PROGRAM = "/usr/local/lib/graticule/deadman.py"
MACHINE_USER_DATA = "/var/lib/graticule/user-data"

# Runs on the machine with its own python3 (Debian's), standard library only.
WATCHDOG = '''\
import subprocess, sys, time, urllib.error, urllib.request
url, after, every = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
last_answer = time.monotonic()  # the hub gets `after` seconds from boot to answer
while True:
    try:
        with opener.open(url, timeout=max(1.0, min(every, 10.0))) as reply:
            answered = reply.status < 500
    except urllib.error.HTTPError as error:
        answered = error.code < 500
    except Exception:
        answered = False
    now = time.monotonic()
    if answered:
        last_answer = now
    elif now - last_answer >= after:
        print(f"deadman: {url} has not answered for {now - last_answer:.0f} s: powering off", flush=True)
        subprocess.run(["poweroff"], check=False)
    time.sleep(every)
'''


@dataclass(frozen=True)
class DeadMan:
    hub_url: str
    after_seconds: float = DEFAULT_AFTER_SECONDS
    every_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not self.hub_url.startswith(("http://", "https://")):
            raise ValueError(f"the dead-man switch needs an http(s) hub URL, not {self.hub_url!r}")
        if self.after_seconds <= 0 or self.every_seconds <= 0:
            raise ValueError("the dead-man switch's after_seconds and every_seconds must be positive")


def with_deadman(user_data: str, deadman: DeadMan) -> str:
    """A shell script that installs and starts the watchdog unit, then runs `user_data`.

    The machine's own script is carried base64-encoded, so nothing in it can end a
    here-document early; it runs with its own interpreter line, as the cloud would run it.
    """
    if user_data and not user_data.startswith("#!"):
        raise ValueError("the dead-man switch wraps user data that is a script (#!...), not cloud-config")
    command = shlex.join(["/usr/bin/python3", PROGRAM, deadman.hub_url,
                          f"{deadman.after_seconds:g}", f"{deadman.every_seconds:g}"])
    unit = (
        "[Unit]\nDescription=graticule dead-man switch: power off when the hub stops answering\n\n"
        f"[Service]\nExecStart={command}\nRestart=always\nRestartSec=5\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    lines = [
        "#!/bin/sh",
        "# graticule: the dead-man switch first, then the machine's own user data.",
        "set -eu",
        f"mkdir -p {PROGRAM.rsplit('/', 1)[0]} {MACHINE_USER_DATA.rsplit('/', 1)[0]} /etc/systemd/system",
        f"cat > {PROGRAM} <<'DEADMAN_EOF'\n{WATCHDOG}DEADMAN_EOF",
        f"cat > /etc/systemd/system/{UNIT} <<'UNIT_EOF'\n{unit}UNIT_EOF",
        "systemctl daemon-reload",
        f"systemctl enable --now {UNIT}",
    ]
    if user_data:
        encoded = base64.b64encode(user_data.encode()).decode()
        lines += [
            f"echo {encoded} | base64 -d > {MACHINE_USER_DATA}",
            f"chmod 0700 {MACHINE_USER_DATA}",
            f"exec {MACHINE_USER_DATA}",
        ]
    return "\n".join(lines) + "\n"
