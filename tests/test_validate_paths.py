"""Every path that is not a readable platform.yaml exits 2 with a located message, through
the real executable: a directory, a missing file, a FIFO, a device, a socket, a file or
directory without permission. Never a traceback, never a hang (a FIFO is never opened)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _validate(path: str, *, prefix: list[str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "deploy.cli.main", "validate", path],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd or REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _assert_invalid(result: subprocess.CompletedProcess, path: str, words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"{path}:1:1: (file): "), result.stderr
    assert words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_directory(tmp_path: Path) -> None:
    _assert_invalid(_validate(str(tmp_path)), str(tmp_path), "is a directory, not a file")


def test_directory_holding_a_platform_yaml_points_at_it(tmp_path: Path) -> None:
    shutil.copy(REPO / "platform.yaml", tmp_path / "platform.yaml")
    _assert_invalid(_validate(str(tmp_path)), str(tmp_path), f"did you mean '{tmp_path / 'platform.yaml'}'?")
    relative = _validate(tmp_path.name, cwd=tmp_path.parent)  # as typed: `platform validate some-directory`
    _assert_invalid(relative, tmp_path.name, f"did you mean '{tmp_path.name}/platform.yaml'?")


def test_missing_file_and_missing_parent(tmp_path: Path) -> None:
    _assert_invalid(_validate(str(tmp_path / "nope.yaml")), str(tmp_path / "nope.yaml"), "no such file")
    file_as_dir = tmp_path / "file"
    file_as_dir.write_text("x")
    _assert_invalid(_validate(str(file_as_dir / "p.yaml")), str(file_as_dir / "p.yaml"), "no such file")


def test_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "platform.yaml"
    os.mkfifo(fifo)  # opening it for reading would block forever with no writer
    _assert_invalid(_validate(str(fifo)), str(fifo), "is a FIFO (named pipe), not a regular file")


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_character_device(device: str) -> None:
    _assert_invalid(_validate(device), device, "is a character device, not a regular file")


def test_socket(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        _assert_invalid(_validate(str(path)), str(path), "is a socket, not a regular file")


def _without_dac_override() -> list[str]:
    """Root reads any file; drop the capabilities that let it, so permissions apply as to
    anyone else (setpriv from util-linux). Not root: permissions apply already."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test permissions as root"
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_file_without_read_permission(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    shutil.copy(REPO / "platform.yaml", path)
    path.chmod(0)
    _assert_invalid(
        _validate(str(path), prefix=_without_dac_override()), str(path), "permission denied: no read permission"
    )


def test_directory_without_search_permission(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(REPO / "platform.yaml", locked / "platform.yaml")
    locked.chmod(0)
    try:
        path = str(locked / "platform.yaml")
        _assert_invalid(_validate(path, prefix=_without_dac_override()), path, "permission denied")
    finally:
        locked.chmod(0o755)  # so pytest can clean tmp_path


def test_readable_copy_of_the_same_file_is_valid(tmp_path: Path) -> None:
    """The control: the same file, readable, validates (the refusals above are about paths)."""
    path = tmp_path / "platform.yaml"
    shutil.copy(REPO / "platform.yaml", path)
    result = _validate(str(path), prefix=_without_dac_override())
    assert result.returncode == 0 and result.stdout.startswith("OK: oceanlab"), result.stderr
