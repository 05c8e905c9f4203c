"""One version: `platform --version`, `graticule.__version__` and the package metadata agree."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib

import graticule
from tests.conftest import REPO


def test_platform_version_matches_the_sdk_and_the_package_metadata():
    result = subprocess.run(
        [sys.executable, "-m", "deploy.cli.main", "--version"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"platform (graticule) {graticule.__version__}"
    assert graticule.__version__ == importlib.metadata.version("graticule")


def test_pyproject_reads_the_version_from_the_sdk():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "graticule._version.__version__"}
