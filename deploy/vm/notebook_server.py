"""`python -m deploy.vm.notebook_server --home DIR --device DEV -- COMMAND...`: on a notebook
server's machine, as root, after `machine_boot` installed the software.

Mounts the user's home volume at DIR (waiting for the hub to attach it; a file system
is made only on a blank volume), adds a Jupyter kernel for the user's environment when
one was installed beside the platform's software (`GRATICULE_PYTHON`, from machine_boot)
and has ipykernel, then execs the single-user server in DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from deploy.runtime import env as contract
from deploy.vm.volume import mount_state

KERNELS = Path("/usr/local/share/jupyter/kernels")


def environment_kernel(python: str, environment: str | None, kernels: Path = KERNELS) -> Path | None:
    """A kernel spec for the user's environment; None when it cannot run one."""
    if not environment or not python or python == sys.executable:
        return None
    if subprocess.run([python, "-c", "import ipykernel"], capture_output=True).returncode != 0:
        return None
    spec = {"argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Python ({environment})", "language": "python",
            "env": {contract.ENVIRONMENT: environment}}
    target = kernels / f"graticule-{environment}"
    target.mkdir(parents=True, exist_ok=True)
    (target / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.vm.notebook_server")
    parser.add_argument("--home", type=Path, required=True, help="where the home volume is mounted")
    parser.add_argument("--device", required=True, help="where the hub attaches the home volume")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the volume")
    parser.add_argument("command", nargs="+", help="the server's command (after --)")
    args = parser.parse_args(argv)
    try:
        how = mount_state(args.home, args.device, args.timeout, what="home volume", label="graticule-home")
    except TimeoutError as error:  # the hub never attached it: the server would lose its files
        print(f"graticule: {error}; nothing started", file=sys.stderr)
        return 1
    print(f"graticule: home at {args.home} ({how})", flush=True)
    args.home.chmod(0o700)
    kernel = environment_kernel(os.environ.get(contract.MACHINE_PYTHON, ""), os.environ.get(contract.ENVIRONMENT))
    if kernel is not None:
        print(f"graticule: kernel {kernel.name}", flush=True)
    os.chdir(args.home)
    os.execvp(args.command[0], args.command)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
