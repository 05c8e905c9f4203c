"""What the CLI says on the terminal while it works, and the questions it asks there."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from deploy.console import is_plain
from deploy.errors import UserError


def fancy_stdout() -> bool:
    """Rich tables and colour on stdout: a terminal, and not CI / NO_COLOR."""
    return sys.stdout.isatty() and not is_plain()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], styles: Sequence[str | None] = ()) -> None:
    """A table on a terminal; padded plain columns otherwise (scripts and CI logs)."""
    if fancy_stdout():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers, header_style="bold")
        for row in rows:
            table.add_row(*row, style=None)
        for column, style in zip(table.columns, styles, strict=False):
            column.style = style or ""
        Console().print(table)
        return
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for line in (headers, *rows):
        cells = [f"{cell!s:<{width}}" for cell, width in zip(line[:-1], widths, strict=False)]
        print(" ".join([*cells, str(line[-1])]).rstrip())


def progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def confirm(question: str, expected: str) -> bool:
    """Ask on the terminal; refuses (UserError, exit 2) when nobody can answer."""
    if not sys.stdin.isatty():
        raise UserError(f"{question!r} needs an answer but stdin is not a terminal (use the flag to skip it)")
    print(question, file=sys.stderr, end=" ", flush=True)
    try:
        answer = input()
    except EOFError:
        return False
    return answer.strip() == expected
