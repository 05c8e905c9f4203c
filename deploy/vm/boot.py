"""`python -m deploy.vm.boot /etc/graticule/vm.json`: the hub VM's first boot, as root.

The user data (aws) or startup script (gcp) installed graticule from the wheelhouse;
this does the rest, then exits: the state volume mounted at the state directory, the
secrets from the cloud's secret store (deploy.vm.stores) into /run/graticule, the
published configuration into `<state>/build`, and the runtime's components (plus
config sync) as systemd units on fixed ports: the proxy's public port
(8000) and the gateway's scheduler TLS port (8786) on every interface, the rest on
127.0.0.1. Phases are logged with timestamps for the boot benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from deploy.runtime import env
from deploy.runtime.addresses import Runtime
from deploy.runtime.components import COMPONENTS, HUB, PROXY, Component
from deploy.runtime.state import Layout, write_private
from deploy.vm import config, publish, secrets, stores, units, volume
from deploy.vm.settings import LOG_DIR, RUN_DIR, UNIT_DIR, VmSettings, phase
from modules.spec import HUB_PORT, SCHEDULER_PORT

PORTS = {"public": HUB_PORT, "proxy_api": 8001, "hub": 8081, "gateway": SCHEDULER_PORT,
         "gateway_web": 8002, "discovery": 8003, "pages": 8004}
FINGERPRINTS = "vm-fingerprints.json"
BASE_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "LANG")


def runtime_of(settings: VmSettings) -> Runtime:
    return Runtime(Layout(settings.state_dir), PORTS, public_host="0.0.0.0")


def base_environment(settings: VmSettings) -> dict[str, str]:
    """What every unit gets besides its own values: no secret here."""
    venv_bin = str(Path(sys.executable).parent)
    base = {"PATH": f"{venv_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
            "AWS_DEFAULT_REGION": settings.region, "AWS_REGION": settings.region}
    base.update({key: os.environ[key] for key in BASE_VARIABLES if os.environ.get(key)})
    return base


def read_secrets(runtime_secrets: Path) -> dict[str, str]:
    return {path.name.replace("_", "-"): path.read_text().strip() for path in runtime_secrets.iterdir()}


def public_addresses(outputs: Mapping[str, object]) -> dict[str, str]:
    """The load balancer's addresses from Terraform's outputs, for the hub (OAuth, discovery)."""
    found = {}
    if isinstance(outputs.get("hub_url"), str):
        found[env.PUBLIC_HUB_URL] = outputs["hub_url"]
    if isinstance(outputs.get("gateway_scheduler_address"), str):
        found[env.PUBLIC_SCHEDULER_URL] = outputs["gateway_scheduler_address"]
    return found


def outputs_of(files: Mapping[str, bytes]) -> dict[str, object]:
    try:
        return json.loads(files.get(publish.OUTPUTS, b"{}"))
    except ValueError:
        return {}


def environments(runtime: Runtime, settings: VmSettings, values: Mapping[str, str],
                 outputs: Mapping[str, object] | None = None) -> dict[str, dict[str, str]]:
    base = base_environment(settings)
    found = {c.name: units.component_environment(c, runtime, base, values) for c in COMPONENTS}
    found[HUB.name].update(public_addresses(outputs or {}))
    found[units.CONFIG_SYNC] = dict(base)
    found[units.LOGSHIP] = dict(base)
    found[units.REAPER] = {**base, **units.database_environment(units.REAPER, values)}
    return found


def fingerprints(runtime: Runtime, envs: Mapping[str, Mapping[str, str]], files: Mapping[str, bytes]) -> dict[str, str]:
    return {c.name: c.fingerprint(units.command_of(c, runtime), envs[c.name], files) for c in COMPONENTS}


def write_fingerprints(runtime: Runtime, values: Mapping[str, str]) -> None:
    write_private(runtime.layout.run / FINGERPRINTS, json.dumps(dict(values), indent=2, sort_keys=True) + "\n")


def read_fingerprints(runtime: Runtime) -> dict[str, str]:
    try:
        return json.loads((runtime.layout.run / FINGERPRINTS).read_text())
    except (OSError, ValueError):
        return {}


def systemctl(*args: str) -> None:
    subprocess.run(["systemctl", *args], check=True)


def wait_healthy(runtime: Runtime, components: tuple[Component, ...] = (PROXY, HUB), timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    for component in components:
        while component.probe(runtime) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{component.name} did not answer within {timeout:.0f} s "
                                   f"(see {LOG_DIR / component.name}.log)")
            time.sleep(0.5)


def boot(settings_path: Path) -> None:
    phase("configuration")
    settings = VmSettings.load(settings_path)
    how = volume.mount_state(settings.state_dir, settings.state_device)
    print(f"graticule: state volume at {settings.state_dir} ({how})", flush=True)
    runtime = runtime_of(settings)
    layout = runtime.layout
    secrets.write(secrets.ensure(stores.secret_store(settings)), RUN_DIR / "secrets")
    layout.root.mkdir(parents=True, exist_ok=True)
    secrets.link_state_secrets(layout.secrets, RUN_DIR / "secrets")
    layout.create()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    artifacts = stores.object_store(settings)
    version = config.current(artifacts)["version"]
    files = config.fetch(artifacts, version)
    config.install(layout, files, version)
    write_private(layout.run / "runtime.json", json.dumps({"ports": dict(PORTS)}, indent=2, sort_keys=True) + "\n")
    envs = environments(runtime, settings, read_secrets(RUN_DIR / "secrets"), outputs_of(files))
    agents = units.agent_units(Path(settings_path), layout.root, settings.cloud)
    unit_files = {**units.component_units(runtime), **agents}
    for name, text in unit_files.items():
        (UNIT_DIR / name).write_text(text)
    for name, values in envs.items():
        write_private(units.env_file(name), units.env_file_text(values))
    write_fingerprints(runtime, fingerprints(runtime, envs, files))
    print(f"graticule: configuration {version[:12]} installed", flush=True)
    phase("services")
    systemctl("daemon-reload")
    systemctl("enable", "--now", *unit_files)
    wait_healthy(runtime)
    phase("healthy")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m deploy.vm.boot /etc/graticule/vm.json", file=sys.stderr)
        return 2
    boot(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
