"""Long steps show what happens while it happens: under a pseudo-terminal, Terraform's lines
appear before the step ends (with colour and a spinner); with CI=true, plain lines only.

Terraform is a stand-in script here (the real one's `init` is too quick offline to show
anything "during"): it prints a line, then blocks on a FIFO that the test opens only after
it has read that line from the terminal, so "before the step ends" is shown by order, not
by timing. The runner is the real deploy.terraform.Terraform.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO
from tests.support.pty import run_in_pty

FIRST, LAST, ENDED = "Initializing the backend...", "Terraform has been successfully initialized!", "STEP-ENDED"


def _standin(tmp_path):
    fifo = tmp_path / "release"
    os.mkfifo(fifo)
    script = tmp_path / "terraform"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        print({FIRST!r}, flush=True)
        open({str(fifo)!r}).read()  # blocks until the test has seen the first line
        print({LAST!r}, flush=True)
    """))
    script.chmod(0o755)
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""\
        from pathlib import Path
        from deploy.terraform import Terraform
        tf = Terraform(Path({str(tmp_path)!r}), state_dir=Path({str(tmp_path / "state")!r}),
                       mirror=Path({str(tmp_path)!r}), binary={str(script)!r})
        tf.init(backend=False)
        print({ENDED!r}, flush=True)
    """))
    return fifo, driver


def _read_until(fd: int, seen: bytearray, needle: bytes) -> bool:
    """Read the terminal until `needle` appears or the writer is gone (a hang guard only)."""
    while needle not in seen:
        ready, _, _ = select.select([fd], [], [], 120)
        if not ready:
            return False
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every writer closed the terminal
            return False
        if not chunk:
            return False
        seen.extend(chunk)
    return True


def _run_in_pty(tmp_path, extra_env: dict[str, str]) -> tuple[bytes, bytes]:
    fifo, driver = _standin(tmp_path)
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "NO_COLOR")}
    env.update({"PYTHONPATH": str(REPO), "TERM": "xterm-256color", "COLUMNS": "100", **extra_env})
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, str(driver)], stdin=slave, stdout=slave, stderr=slave, env=env,
                            cwd=tmp_path, start_new_session=True)
    os.close(slave)
    seen = bytearray()
    try:
        assert _read_until(master, seen, FIRST.encode()), bytes(seen).decode(errors="replace")
        before_release = bytes(seen)
        assert proc.poll() is None  # the step is still running: the stand-in waits on the FIFO
        with open(fifo, "w") as release:
            release.write("go\n")
        _read_until(master, seen, b"\0never")  # to EOF
        assert proc.wait(timeout=120) == 0, bytes(seen).decode(errors="replace")
        return before_release, bytes(seen)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_terraform_lines_show_before_the_step_ends_with_colour_on_a_terminal(tmp_path):
    before, everything = _run_in_pty(tmp_path, {})
    assert FIRST.encode() in before and LAST.encode() not in before and ENDED.encode() not in before
    assert b"\x1b[" in everything  # a terminal gets colour and the spinner
    assert everything.index(LAST.encode()) < everything.index(ENDED.encode())
    assert b"terraform init" in everything


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_ci_gets_plain_lines_without_escape_codes(tmp_path):
    before, everything = _run_in_pty(tmp_path, {"CI": "true"})
    assert FIRST.encode() in before and LAST.encode() not in before
    assert b"\x1b" not in everything
    text = everything.decode().replace("\r\n", "\n")
    assert "==> terraform init\n" in text and f"  {FIRST}\n" in text and f"  {LAST}\n" in text
    assert "done in " in text and text.index(LAST) < text.index(ENDED)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_users_is_a_table_on_a_terminal_and_plain_columns_under_ci():
    argv = [sys.executable, "-m", "deploy.cli.main", "users", "list"]
    fancy = run_in_pty(argv, {}).decode()
    assert "┏" in fancy and "\x1b[" in fancy and "alice" in fancy
    plain = run_in_pty(argv, {"CI": "true"}).decode().replace("\r\n", "\n")
    assert "\x1b" not in plain and "┏" not in plain
    assert plain.splitlines()[0].split() == ["NAME", "GROUPS", "BUDGET", "PROFILES"]


def test_a_failed_step_says_failed_not_done(tmp_path, monkeypatch, capsys):
    """A streamed command that exits non-zero ends its step with "failed after", as does an
    exception out of the block; a good one with "done in"."""
    from pathlib import Path

    from deploy.terraform import Terraform, TerraformError

    monkeypatch.setenv("CI", "true")
    script = tmp_path / "terraform"
    script.write_text(f"#!{sys.executable}\nimport sys\nprint('Error: no', flush=True)\nsys.exit(1)\n")
    script.chmod(0o755)
    tf = Terraform(Path(tmp_path), state_dir=tmp_path / "state", mirror=tmp_path, binary=str(script))
    with pytest.raises(TerraformError):
        tf.init(backend=False)
    failed = capsys.readouterr().err
    assert "failed after " in failed and "done in " not in failed

    from deploy import console

    with pytest.raises(ValueError), console.step("boom"):
        raise ValueError("x")
    with console.step("fine"):
        pass
    text = capsys.readouterr().err
    assert "failed after" in text.split("==> fine")[0] and "done in " in text.split("==> fine")[1]
