"""Showing a build that runs on the platform (the gateway building a synced environment)
while it runs: its steps and uv's lines, as the SDK receives them.

`Cluster(sync=True, progress=...)` chooses: True (the default) shows them on stderr,
with rich (a spinner with elapsed time, lines dimmed above it) when stderr is a
terminal, `CI` is not set and rich is installed (it is not an SDK dependency), else as
plain lines; False shows nothing (scripts); a callable gets every `BuildLine` instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class BuildLine:
    text: str
    elapsed: float  # seconds since the build started, by the gateway's clock
    step: bool  # a step of the build ("installing 57 packages"), not a line of uv's output

    def __str__(self) -> str:
        return self.text


Show = Callable[[BuildLine], None]
Setting = bool | Show


def is_plain(stream: TextIO) -> bool:
    """No colour, no spinner: not a terminal, CI, NO_COLOR or TERM=dumb."""
    if os.environ.get("CI") or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return True
    isatty = getattr(stream, "isatty", None)
    return not (isatty and isatty())


def _plain(stream: TextIO) -> Show:
    def show(line: BuildLine) -> None:
        text = f"==> [{line.elapsed:5.1f} s] {line.text}" if line.step else f"    {line.text}"
        print(text, file=stream, flush=True)

    return show


@contextlib.contextmanager
def _rich(stream: TextIO, title: str) -> Iterator[Show]:
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    console = Console(file=stream)
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(title, total=None)

        def show(line: BuildLine) -> None:
            if line.step:
                progress.update(task, description=f"{title}: {line.text}")
                console.print(Text(f"• {line.text}", style="bold"), highlight=False)
            else:
                console.print(Text(f"  {line.text}", style="dim"), highlight=False)

        yield show


@contextlib.contextmanager
def shown(setting: Setting, title: str, stream: TextIO | None = None) -> Iterator[Show]:
    """The function that shows each line of a build, for the duration of the block."""
    if callable(setting):
        yield setting
        return
    if not setting:
        yield lambda line: None
        return
    stream = stream or sys.stderr
    if not is_plain(stream) and importlib.util.find_spec("rich") is not None:
        with _rich(stream, title) as show:
            yield show
        return
    print(f"==> {title}", file=stream, flush=True)
    yield _plain(stream)
