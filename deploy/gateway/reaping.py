"""The hub VM's reaper unit (`graticule-reaper`): every few minutes, terminate the platform's
machines that the gateway does not know (deploy.cloud.reaper), so a machine whose launch
the gateway lost, or whose cluster it forgot in a crash, stops costing money.

The known machines are read from the gateway's database on the state volume
(deploy.gateway.machines_in_use); when it cannot be read (not created yet, locked,
corrupt) nothing is terminated: an unreadable database never reads as "nothing in use".
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from deploy.cloud.machines import NOTEBOOK_ROLE, Machines, MachinesError
from deploy.cloud.reaper import DEFAULT_GRACE_SECONDS, Reaped, reap
from deploy.gateway.adoption import DASK_ROLES
from deploy.gateway.machines_in_use import machine_ids
from deploy.runtime.database import database_url
from deploy.runtime.state import Layout
from deploy.vm import servers_in_use
from deploy.vm.settings import VmSettings

INTERVAL_SECONDS = 300.0


def gateway_database(state_dir: Path) -> str:
    """Where the rendered gateway config keeps its database (dask_gateway_config.py.tmpl):
    the operator's PostgreSQL when the unit's environment names one, else the state volume."""
    return database_url(os.environ, Layout(state_dir).gateway / "gateway.sqlite")


def reap_once(settings: VmSettings, machines: Machines, grace: float = DEFAULT_GRACE_SECONDS) -> Reaped | None:
    """One pass; None when the gateway's database could not be read (nothing terminated).
    Notebook servers' machines are known from the hub's database (all kept when it cannot be read)."""
    try:
        known = machine_ids(gateway_database(settings.state_dir))
    except Exception as error:  # any failure to read means: we do not know what is in use
        print(f"reaper: the gateway's database cannot be read ({error}); nothing terminated", flush=True)
        return None
    # The gateway's roles from its database; notebook servers' machines from the hub's, and
    # only when it can be read (else none of them is judged: all are kept).
    servers = servers_in_use.known_or_none(settings.state_dir)
    roles = (*DASK_ROLES, NOTEBOOK_ROLE) if servers is not None else DASK_ROLES
    return reap(machines, settings.platform, lambda: known | (servers or set()), grace, roles=roles)


def machines_of(settings: VmSettings) -> Machines:
    """The machines layer of the hub's cloud, in the hub's region, with the VM's own identity."""
    if settings.cloud == "gcp":
        from deploy.cloud.gcp import GCPMachines, on_vm_arguments

        return GCPMachines(project=settings.project, regions=[settings.region], **on_vm_arguments())
    from deploy.cloud.aws import AWSMachines

    return AWSMachines(region=settings.region)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.gateway.reaping", description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", type=Path, help="the VM's settings (/etc/graticule/vm.json)")
    parser.add_argument("--interval", type=float, default=INTERVAL_SECONDS, help="seconds between passes")
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE_SECONDS, help="keep machines younger than this")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    settings = VmSettings.load(args.settings)
    machines = machines_of(settings)
    while True:
        try:
            verdict = reap_once(settings, machines, args.grace)
        except MachinesError as error:
            print(f"reaper: {error}", flush=True)
            verdict = None
        if verdict is not None and verdict.terminated:
            print(f"reaper: terminated {' '.join(sorted(verdict.terminated))}", flush=True)
        if args.once:
            return 0 if verdict is not None else 1
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
