"""systemd units of the hub VM: one per runtime component, plus config sync, the log
shipper and the reaper.

Each unit runs the same command as the local target's supervisor, with its environment
from a 0600 file in the RuntimeDirectory (/run/graticule, tmpfs: the secrets never touch
a disk), output appended to /var/log/graticule/<component>.log (the log shipper follows
those files), hardened: Restart=always, ProtectSystem, PrivateTmp, NoNewPrivileges. The
hub's unit stops only the hub process (KillMode=process): notebook servers it spawned run
in sessions of their own and survive a hub restart, as cleanup_servers=False expects.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from deploy.runtime import env
from deploy.runtime.addresses import Runtime
from deploy.runtime.components import COMPONENTS, HUB, Component
from deploy.vm.settings import LOG_DIR, RUN_DIR
from modules.naming import DATABASE_URL_KEY

CONFIG_SYNC = "config-sync"
LOGSHIP = "logship"
REAPER = "reaper"
# systemd's default soft limit is 1024 open files. The gateway holds a socket per request the
# proxy forwards (a long poll per booting machine: a 1,000-machine start alone would run out),
# the proxy two (it forwards up to 4,096 at once, deploy.local.http_proxy).
OPEN_FILES = 65536


def unit_name(component: str) -> str:
    return f"graticule-{component}.service"


def env_file(component: str) -> Path:
    return RUN_DIR / f"{component}.env"


def command_of(component: Component, runtime: Runtime) -> list[str]:
    command = component.command(runtime)
    return [*command, "--upgrade-db"] if component is HUB else command  # a new graticule may bring a schema


def unit_text(name: str, description: str, command: list[str], *, workdir: Path, state_dir: Path,
              after: tuple[str, ...] = (), keep_children: bool = False) -> str:
    log = LOG_DIR / f"{name}.log"
    lines = [
        "[Unit]",
        f"Description=graticule {description}",
        "After=" + " ".join(["network-online.target", *after]),
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={shlex.join(command)}",
        f"WorkingDirectory={workdir}",
        f"EnvironmentFile={env_file(name)}",
        "Restart=always",
        "RestartSec=2",
        f"LimitNOFILE={OPEN_FILES}",
        "ProtectSystem=full",
        f"ReadWritePaths={state_dir} {LOG_DIR} {RUN_DIR}",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "RuntimeDirectory=graticule",
        "RuntimeDirectoryMode=0700",
        "RuntimeDirectoryPreserve=yes",  # the secrets stay while one unit restarts
        f"StandardOutput=append:{log}",
        f"StandardError=append:{log}",
    ]
    if keep_children:
        lines.append("KillMode=process")
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def component_units(runtime: Runtime) -> dict[str, str]:
    """unit file name -> text, for the runtime's components (start order)."""
    units = {}
    previous: tuple[str, ...] = ()
    for component in COMPONENTS:
        units[unit_name(component.name)] = unit_text(
            component.name, component.name, command_of(component, runtime),
            workdir=component.workdir(runtime.layout), state_dir=runtime.layout.root, after=previous,
            keep_children=component is HUB)
        previous = (unit_name(component.name),)
    return units


def agent_units(settings_path: Path, state_dir: Path, cloud: str = "aws") -> dict[str, str]:
    """Config sync, the log shipper that feeds `platform logs` (deploy.vm.logship: to
    CloudWatch Logs on aws, Cloud Logging on gcp) and the reaper of unknown machines
    (deploy.gateway.reaping)."""
    return {
        unit_name(CONFIG_SYNC): unit_text(
            CONFIG_SYNC, "configuration sync from the artifacts bucket",
            [sys.executable, "-m", "deploy.vm.config_sync", str(settings_path)],
            workdir=state_dir, state_dir=state_dir, after=(unit_name(HUB.name),)),
        unit_name(LOGSHIP): unit_text(
            LOGSHIP, f"log shipper to {'Cloud Logging' if cloud == 'gcp' else 'CloudWatch Logs'}",
            [sys.executable, "-m", "deploy.vm.logship", "--settings", str(settings_path)],
            workdir=state_dir, state_dir=state_dir),
        unit_name(REAPER): unit_text(
            REAPER, "reaper of the platform's machines the gateway does not know",
            [sys.executable, "-m", "deploy.gateway.reaping", str(settings_path)],
            workdir=state_dir, state_dir=state_dir, after=(unit_name("gateway"),)),
    }


def component_environment(component: Component, runtime: Runtime, base: Mapping[str, str],
                          secrets: Mapping[str, str]) -> dict[str, str]:
    """What goes in a component's environment file: the runtime's values (its secrets
    among them), the machine's basics, and the secrets only it reads."""
    values = {**runtime.values(), **component.extra_environment(runtime)}
    if component.name == "gateway" and "gateway-encrypt-keys" in secrets:
        values["DASK_GATEWAY_ENCRYPT_KEYS"] = secrets["gateway-encrypt-keys"]
    if component is HUB and "oauth-client-secret" in secrets:
        values[env.OAUTH_CLIENT_SECRET] = secrets["oauth-client-secret"]
    values.update(database_environment(component.name, secrets))
    return env.component_environment(values, component.withheld, caller=base)


def database_environment(name: str, secrets: Mapping[str, str]) -> dict[str, str]:
    """The operator's PostgreSQL, when the `database-url` secret has a value: the hub's and
    the gateway's tables (the reaper reads the gateway's), and the ledger's for whoever
    opens it (the gateway, the hub's usage pages, the jobs scheduler). One database: the
    three sets of tables cannot clash (deploy/runtime/database.py)."""
    url = secrets.get(DATABASE_URL_KEY)
    if not url:
        return {}
    found = {}
    if name in ("hub", "gateway", REAPER):
        found[env.DATABASE_URL] = url
    if name in ("hub", "gateway", "jobs"):
        found[env.LEDGER_URL] = url
    return found


def env_file_text(values: Mapping[str, str]) -> str:
    """systemd's EnvironmentFile syntax: KEY="value", quotes and backslashes escaped."""
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "".join(f"{key}={quoted(value)}\n" for key, value in sorted(values.items()))
