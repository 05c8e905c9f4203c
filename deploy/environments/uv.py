"""Running uv: the one tool that resolves, locks and builds every environment."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable

from deploy.errors import RuntimeFailure


class UvError(RuntimeFailure, RuntimeError):
    """uv failed; the message is the tail of its output. `interrupted`: uv did not fail on
    its own but was stopped by a signal (say, its service restarting), so the same command
    may well succeed when run again."""

    def __init__(self, message: str, *, interrupted: bool = False) -> None:
        super().__init__(message)
        self.interrupted = interrupted


def _failure(command: str, returncode: int, stderr: str) -> UvError:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if returncode < 0:  # killed: its output stops mid-way and says nothing of why
        name = signal.Signals(-returncode).name
        return UvError("\n".join([*lines[-12:], f"uv {command} was stopped by {name}"]), interrupted=True)
    return UvError("\n".join(lines[-12:]) or f"uv {command} exited {returncode}")


def binary() -> str:
    try:
        from uv import find_uv_bin  # the uv wheel, a dependency of graticule

        return find_uv_bin()
    except Exception:
        found = shutil.which("uv")
        if not found:
            raise UvError("uv is not installed (pip install uv)") from None
        return found


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None, stream: bool = False,
        on_line: Callable[[str], None] | None = None) -> str:
    """uv's stdout; UvError with the tail of stderr when it fails.

    stream: show uv's output line by line while it runs (installs take a while);
    on_line: send each line there instead, as it comes (the gateway's sync build log)."""
    if stream or on_line is not None:
        from deploy import console

        finished = console.run_streamed([binary(), *args], stdin=stdin, env={**os.environ, **(env or {})},
                                        on_line=on_line or console.emit)
        if finished.returncode != 0:
            raise _failure(args[0], finished.returncode, finished.stderr)
        return finished.stdout
    result = subprocess.run(
        [binary(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {}), "NO_COLOR": "1"},
    )
    if result.returncode != 0:
        raise _failure(args[0], result.returncode, result.stderr)
    return result.stdout
