"""Line-level edits of platform.yaml that keep every other byte as it was.

A full ruamel round-trip re-flows some styles (e.g. `{ a: b }` becomes `{a: b}`), which
would put noise in the admin's pull request. So edits splice text at positions the
loader reports, then the whole result is validated before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from render import loader


@dataclass(frozen=True)
class Span:
    """Lines [start, end) of the text, 0-based."""

    start: int
    end: int


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def sequence_items(text: str, key: str) -> tuple[list[Span], int]:
    """Spans of the block-sequence items under top-level `key`, and the dash column.

    Raises ValueError when `key` is not a non-empty block sequence (the caller then
    explains what it expected).
    """
    document = loader.parse(text, "platform.yaml")
    data = document.data
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise ValueError(f"`{key}:` is not a non-empty list")
    lines = text.splitlines(keepends=True)
    key_line, key_col = document.positions.keys[(key,)]
    starts = []
    for index in range(len(items)):
        line, _ = document.positions.values[(key, index)]
        if line == key_line:
            raise ValueError(f"`{key}:` is written in flow style ([...]); use one '- ' item per line")
        starts.append(line - 1)
    dash_col = lines[starts[0]].index("-")
    block_end = _block_end(lines, starts[-1], key_col - 1)
    ends = [*starts[1:], block_end]
    return [Span(start, end) for start, end in zip(starts, ends, strict=True)], dash_col


def _block_end(lines: list[str], last_start: int, key_indent: int) -> int:
    """First line after the last item: the next line back at the key's indentation."""
    end = last_start + 1
    while end < len(lines) and (not _is_content(lines[end]) or _indent(lines[end]) > key_indent):
        end += 1
    # Blank lines and comments just before the next section belong to that section.
    while end > last_start + 1 and not _is_content(lines[end - 1]):
        end -= 1
    return end


def append_item(text: str, key: str, item_lines: list[str]) -> str:
    """Add one item (given as lines relative to the dash, first line starting '- ')."""
    spans, dash_col = sequence_items(text, key)
    lines = text.splitlines(keepends=True)
    end = spans[-1].end
    if end > 0 and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    pad = " " * dash_col
    block = [f"{pad}{line}\n" for line in item_lines]
    return "".join(lines[:end] + block + lines[end:])


def remove_item(text: str, key: str, index: int) -> str:
    spans, _ = sequence_items(text, key)
    lines = text.splitlines(keepends=True)
    span = spans[index]
    return "".join(lines[: span.start] + lines[span.end :])
