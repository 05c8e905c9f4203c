"""Load platform.yaml into plain data plus the line and column of every key and value.

ruamel.yaml's round-trip loader records positions on each mapping and sequence; we copy
the tree into plain dicts/lists (what pydantic wants) and keep a flat index of positions
keyed by path, so any later error can point at `platform.yaml:LINE:COL`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from render.errors import ConfigErrors, ConfigIssue

MAX_BYTES = 1024 * 1024
# A real platform.yaml with thousands of users has tens of thousands of nodes; an alias
# bomb has billions. Anything past this is refused before it can exhaust memory.
MAX_NODES = 200_000
MAX_DEPTH = 64

Path_ = tuple[object, ...]


@dataclass
class Positions:
    """1-based (line, col) of each key and value, by path from the document root."""

    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def of_value(self, path: Path_) -> tuple[int, int]:
        """Where the value at `path` is, or the nearest enclosing thing that exists."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self.values:
                return self.values[prefix]
            if prefix in self.keys:
                return self.keys[prefix]
        return (1, 1)

    def of_key(self, path: Path_) -> tuple[int, int]:
        """Where the key naming `path` is (falls back to its value, then its parents)."""
        if path in self.keys:
            return self.keys[path]
        return self.of_value(path)


@dataclass
class Document:
    file: str
    data: object
    positions: Positions


class _TooBig(Exception):
    def __init__(self, path: Path_, reason: str):
        self.path = path
        self.reason = reason


def read_text(path: Path, display: str) -> str:
    """The file as text, or a located error for the ways a file can be unreadable."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ConfigErrors([ConfigIssue(display, 1, 1, "(file)", "no such file")]) from None
    if size > MAX_BYTES:
        raise ConfigErrors(
            [ConfigIssue(display, 1, 1, "(file)", f"file is {size} bytes; the limit is {MAX_BYTES}")]
        )
    raw = path.read_bytes()
    return decode(raw, display)


def decode(raw: bytes, display: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise ConfigErrors(
            [ConfigIssue(display, line, col, "(file)", f"not UTF-8 text (byte 0x{raw[exc.start]:02x})")]
        ) from None
    if "\x00" in text:
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        col = offset - (text.rfind("\n", 0, offset) + 1) + 1
        raise ConfigErrors([ConfigIssue(display, line, col, "(file)", "binary data (NUL byte) in a YAML file")])
    return text.removeprefix("\ufeff")


def parse(text: str, display: str) -> Document:
    """Parse YAML text into a Document, or raise ConfigErrors located in `display`."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        documents = list(yaml.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        if "duplicate key" in str(exc).lower():
            problem = _duplicate_key_message(exc)
        raise ConfigErrors([ConfigIssue(display, line, col, "(yaml)", problem)]) from None
    except YAMLError as exc:
        message = " ".join(str(exc).split())[:200]
        raise ConfigErrors([ConfigIssue(display, 1, 1, "(yaml)", message)]) from None
    except RecursionError:
        raise ConfigErrors([ConfigIssue(display, 1, 1, "(yaml)", "nesting is too deep")]) from None
    if len(documents) != 1:
        if not documents:
            raise ConfigErrors([ConfigIssue(display, 1, 1, "(root)", "the file is empty")])
        raise ConfigErrors(
            [ConfigIssue(display, 1, 1, "(root)", f"expected one YAML document, found {len(documents)}")]
        )
    root = documents[0]
    if root is None:
        raise ConfigErrors([ConfigIssue(display, 1, 1, "(root)", "the file is empty")])
    if not isinstance(root, CommentedMap):
        kind = type(root).__name__.removeprefix("Commented").lower()
        raise ConfigErrors(
            [ConfigIssue(display, 1, 1, "(root)", f"expected a mapping of sections, got a {kind}")]
        )
    positions = Positions()
    positions.values[()] = (1, 1)
    counter = [0]
    try:
        data = _plain(root, (), positions, counter, ancestors=())
    except _TooBig as exc:
        line, col = positions.of_value(exc.path)
        raise ConfigErrors([ConfigIssue(display, line, col, "(yaml)", exc.reason)]) from None
    return Document(display, data, positions)


def load(path: Path, display: str | None = None) -> Document:
    display = display or str(path)
    return parse(read_text(path, display), display)


def _duplicate_key_message(exc: MarkedYAMLError) -> str:
    problem = str(exc.problem or "")
    return " ".join(problem.split()).rstrip(".") + " (each key may appear once)"


def _plain(node: object, path: Path_, positions: Positions, counter: list[int], ancestors: tuple[int, ...]):
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise _TooBig(path, f"the document expands to more than {MAX_NODES} nodes (YAML alias bomb?)")
    if len(path) > MAX_DEPTH:
        raise _TooBig(path, f"nesting deeper than {MAX_DEPTH} levels")
    if isinstance(node, CommentedMap | CommentedSeq) and id(node) in ancestors:
        raise _TooBig(path, "a YAML alias refers to itself (recursive structure)")
    inner = (*ancestors, id(node))
    if isinstance(node, CommentedMap):
        result: dict[object, object] = {}
        for key in node:
            child = (*path, key)
            key_line, key_col = node.lc.key(key)
            value_line, value_col = node.lc.value(key)
            positions.keys.setdefault(child, (key_line + 1, key_col + 1))
            positions.values.setdefault(child, (value_line + 1, value_col + 1))
            result[_scalar(key)] = _plain(node[key], child, positions, counter, inner)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            child = (*path, index)
            line, col = node.lc.item(index)
            positions.values.setdefault(child, (line + 1, col + 1))
            items.append(_plain(item, child, positions, counter, inner))
        return items
    return _scalar(node)


def _scalar(value: object) -> object:
    """ruamel's scalar subclasses (ScalarFloat, CommentedKeyMap...) as plain Python values."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, tuple | frozenset):
        return str(value)
    return value
