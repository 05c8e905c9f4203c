"""A small test tree run by a pytest process of its own, with this suite's hooks, recording
what ran where: how tests/test_xdist_groups.py, test_handover.py and test_last_user.py watch
the suite's plugins order, place and tear down tests under xdist and without it.

A tree's conftest starts with `RECORDING` (this suite's hooks, and `record(what)`, which
appends `what` and the xdist worker, or `main`, to ran.txt); `run_tree` writes the tree, runs
pytest in it and returns the process and the recorded (what, worker) pairs in order.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

RECORDING = '''
import contextlib
import os
from pathlib import Path

import pytest

from tests.conftest import pytest_configure, pytest_plugins  # noqa: F401  (this suite's own hooks)

RECORD = Path(__file__).parent / "ran.txt"


def record(what: str) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with RECORD.open("a") as out:
        out.write(f"{what} {worker}\\n")
'''


def write_tree(root: Path, conftest: str, modules: dict[str, str]) -> Path:
    (root / "conftest.py").write_text(conftest)
    (root / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: as this suite's\n")
    for name, text in modules.items():
        (root / name).write_text(text)
    return root


def environment(**env: str) -> dict[str, str]:
    """This process's environment without pytest's own variables, the repo importable."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environ.get("PYTHONPATH")]))
    return {**environ, **env}


def run_pytest(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--strict-markers", "-q",
                           *args], cwd=root, capture_output=True, text=True, timeout=300, env=environment(**env))


def recorded(root: Path) -> list[tuple[str, str]]:
    record = root / "ran.txt"
    lines = record.read_text().splitlines() if record.is_file() else []
    return [tuple(line.split()) for line in lines]  # type: ignore[misc]


def run_tree(root: Path, conftest: str, modules: dict[str, str], *args: str,
             **env: str) -> tuple[subprocess.CompletedProcess, list[tuple[str, str]]]:
    result = run_pytest(write_tree(root, conftest, modules), *args, **env)
    return result, recorded(root)
