"""A laptop: a virtual environment holding only the SDK's requirements (`distributed`,
`dask-gateway`; graticule through a .pth file), running SDK code away from the repository.

`on_laptop` runs one step of a laptop script (tests/support/laptop_client.py unless told)
with the laptop's config directory as its working directory and none of this process's
graticule, JupyterHub, dask-gateway or PYTHONPATH variables, and returns the JSON its
last line prints.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support import environments

LAPTOP_CLIENT = Path(__file__).parent / "laptop_client.py"
# What the test process has and a laptop would not: the repository on its path, the
# platform's own settings.
NOT_ON_A_LAPTOP = ("GRATICULE_", "JUPYTERHUB_", "DASK_GATEWAY", "PYTHONPATH")


def laptop_python(base: Path) -> Path:
    """The laptop's Python, one virtual environment per session's base temp directory."""
    with environments.wheelhouse_in_use(base):
        venv = environments.shared_venv(base, "laptop", ("distributed", "dask-gateway"))
    return venv / "bin" / "python"


def laptop_env(config_dir: Path, *, drop: tuple[str, ...] = (), **env: str) -> dict[str, str]:
    """This process's environment as a laptop has it: the graticule config in `config_dir`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(NOT_ON_A_LAPTOP + drop)}
    return {**clean, "GRATICULE_CONFIG_DIR": str(config_dir), **env}


def on_laptop(python: Path, config_dir: Path, *step: str, stdin: str = "", script: Path = LAPTOP_CLIENT,
              timeout: float = 600, **env: str) -> dict:
    """One step of a laptop script, away from the repository (cwd and environment)."""
    done = subprocess.run(
        [str(python), str(script), *step], input=stdin, capture_output=True, text=True,
        env=laptop_env(config_dir, **env), cwd=config_dir, timeout=timeout,
    )
    assert done.returncode == 0, f"laptop step {step} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])
