"""What the CLI says on the terminal while it works, and the questions it asks there."""

from __future__ import annotations

import sys

from deploy.errors import UserError


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
