"""One Jupyter kernel per environment granted to a user, for their notebook server.

Kernel specs are written under `<state>/environments/kernels/<user>/kernels/` and the
spawner puts that folder on the server's JUPYTER_PATH: the launcher shows
"Python (ml)", "Python (default)"... each running that environment's own Python.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from deploy.environments import runtime
from deploy.environments.ensure import environments_dir
from deploy.files import replace_tree_atomic
from deploy.runtime import env

PREFIX = "graticule-"


def kernels_dir(state: Path, user: str) -> Path:
    if not re.match(r"^[A-Za-z0-9._@-]+$", user):
        raise ValueError(f"invalid user name {user!r}")
    return environments_dir(state) / "kernels" / user


def kernel_spec(name: str, python: str) -> dict:
    return {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({name})",
        "language": "python",
        "metadata": {"graticule": {"environment": name}},
        "env": {env.ENVIRONMENT: name},
    }


def prepare(state: Path, user: str, granted: list[str]) -> dict[str, str]:
    """Write `user`'s kernel specs; the environment variables their server needs."""
    pythons = runtime.pythons(state)
    files = {
        f"kernels/{PREFIX}{name}/kernel.json": (json.dumps(kernel_spec(name, pythons[name]), indent=2) + "\n").encode()
        for name in granted
        if name in pythons
    }
    root = kernels_dir(state, user)
    if files:
        replace_tree_atomic(root, files)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return {"JUPYTER_PATH": str(root)} if files else {}
