"""Rendering a cloud target without Node.js on PATH: a clear error (exit 2), no jsii traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("target", ["aws", "gcp"])
def test_missing_node_is_a_clear_error_with_exit_2(tmp_path, target):
    empty_path = tmp_path / "bin"  # a PATH on which there is no node (the interpreter is called by its path)
    empty_path.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "deploy.cli.main", "render", "--target", target, "--out", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PATH": str(empty_path), "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2, result.stderr
    assert "Node.js is not on PATH" in result.stderr and "nodejs" in result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert not (tmp_path / "out").exists()
