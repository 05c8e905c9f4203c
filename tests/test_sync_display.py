"""How the SDK shows a build on the gateway (graticule.progress): rich under a terminal,
plain lines when piped or under CI=true, nothing when quiet, or the caller's own function.
The terminal cases run a real program under a pseudo-terminal."""

from __future__ import annotations

import io
import os
import sys
import textwrap

import pytest

from graticule.progress import BuildLine, shown
from tests.support.pty import run_in_pty

LINES = [BuildLine("creating a Python 3.11 environment", 0.1, True),
         BuildLine("Using CPython 3.11.7 interpreter at: /usr/bin/python3.11", 0.2, False),
         BuildLine("installing 32 packages", 0.4, True),
         BuildLine(" + syncgate==1.0", 2.9, False)]


def test_plain_lines_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    out = io.StringIO()
    with shown(True, "building this environment on the gateway", stream=out) as show:
        for line in LINES:
            show(line)
    assert out.getvalue().splitlines() == [
        "==> building this environment on the gateway",
        "==> [  0.1 s] creating a Python 3.11 environment",
        "    Using CPython 3.11.7 interpreter at: /usr/bin/python3.11",
        "==> [  0.4 s] installing 32 packages",
        "     + syncgate==1.0",
    ]


def test_quiet_shows_nothing_and_a_callable_gets_every_line(capsys):
    with shown(False, "title") as show:
        for line in LINES:
            show(line)
    received: list[BuildLine] = []
    with shown(received.append, "title") as show:
        for line in LINES:
            show(line)
    assert received == LINES
    assert capsys.readouterr() == ("", "")


def _under_a_terminal(extra_env: dict[str, str]) -> bytes:
    code = textwrap.dedent(f"""
        from graticule.progress import BuildLine, shown
        with shown(True, "building this environment on the gateway") as show:
            for line in {LINES!r}:
                show(line)
        print("SHOWN-ALL", flush=True)
    """)
    return run_in_pty([sys.executable, "-c", code], extra_env)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_a_terminal_gets_rich_output_and_ci_plain_lines_without_escape_codes():
    terminal = _under_a_terminal({})
    assert b"\x1b[" in terminal  # colour and the spinner
    for line in LINES:
        assert line.text.strip().encode() in terminal
    assert b"==> [" not in terminal  # not the plain rendering
    ci = _under_a_terminal({"CI": "true"})
    assert b"\x1b" not in ci
    text = ci.decode().replace("\r\n", "\n")
    assert "==> [  0.4 s] installing 32 packages\n" in text and "     + syncgate==1.0\n" in text
    assert text.index("syncgate") < text.index("SHOWN-ALL")
