"""What long steps show while they run: a spinner with elapsed time on a terminal, and the
output of the programs they run (Terraform, uv) line by line as it comes.

Colour and spinners only when stderr is a terminal and `CI` is not set; otherwise plain
lines (CI logs and the pull-request comment stay readable). Library code uses `step` and
`run_streamed`; the SDK never imports this (rich is a [platform] dependency).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_active: list = []  # the rich Progress of the step running now, if any


def is_plain() -> bool:
    """No colour, no spinner: not a terminal, CI, NO_COLOR or TERM=dumb."""
    if os.environ.get("CI") or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return True
    return not sys.stderr.isatty()


def emit(text: str) -> None:
    """One line of a program's output, shown above the spinner (or plain on stderr)."""
    if _active:
        from rich.text import Text

        _active[-1].console.print(Text("  " + text, style="dim"), highlight=False)
    else:
        print(f"  {text}", file=sys.stderr, flush=True)


class Shown:
    """A step on screen; `fail()` when it ended badly without raising (a failed command)."""

    def __init__(self) -> None:
        self.failed = False

    def fail(self) -> None:
        self.failed = True


@contextlib.contextmanager
def step(title: str) -> Iterator[Shown]:
    """Show `title` while the block runs: a spinner and elapsed time, then how long it took,
    or that it failed (an exception out of the block, or `fail()`)."""
    started = time.monotonic()
    shown = Shown()
    if is_plain():
        print(f"==> {title}", file=sys.stderr, flush=True)
        try:
            yield shown
        except BaseException:
            shown.fail()
            raise
        finally:
            outcome = "failed after" if shown.failed else "done in"
            print(f"    {outcome} {time.monotonic() - started:.1f} s: {title}", file=sys.stderr, flush=True)
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    try:
        with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            progress.add_task(title, total=None)
            _active.append(progress)
            try:
                yield shown
            finally:
                _active.pop()
    except BaseException:
        shown.fail()
        raise
    finally:
        mark = "[red]✗[/red]" if shown.failed else "[green]✓[/green]"
        console.print(f"{mark} {title} [dim]({time.monotonic() - started:.1f} s)[/dim]")


@dataclass(frozen=True)
class Finished:
    returncode: int | None  # None: killed on timeout
    stdout: str
    stderr: str


def run_streamed(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 timeout: float | None = None, stdin: str | None = None,
                 on_line: Callable[[str], None] = emit) -> Finished:
    """Run `argv`, showing each line of its stdout and stderr as it comes, and keep both.

    on_line: where each line goes (the terminal by default; the gateway's sync builds send
    them to the build's log, which the SDK follows)."""
    proc = subprocess.Popen(
        list(argv), env=dict(env) if env is not None else None, cwd=cwd, text=True, bufsize=1,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    captured: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def pump(stream, name: str) -> None:
        for line in stream:
            captured[name].append(line)
            on_line(line.rstrip("\n"))

    readers = [threading.Thread(target=pump, args=(proc.stdout, "stdout"), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, "stderr"), daemon=True)]
    for reader in readers:
        reader.start()
    if stdin is not None:
        proc.stdin.write(stdin)
        proc.stdin.close()
    try:
        code: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    for reader in readers:
        reader.join()
    return Finished(code, "".join(captured["stdout"]), "".join(captured["stderr"]))
