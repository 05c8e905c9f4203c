"""Load platform.yaml into plain data plus the line and column of every key and value.

ruamel.yaml composes the document into nodes that carry their start marks (with the C
parser from ruamel.yaml.clib when installed: ~10x faster than the pure-Python round-trip
loader on a 2,000-user file); we copy the nodes into plain dicts/lists (what pydantic
wants) and keep a flat index of positions keyed by path, so any later error can point at
`platform.yaml:LINE:COL`. Edits that must keep comments use the round-trip loader or
line-level splicing (deploy/yaml_edit.py); validation never needs comments.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

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
    """The file as text, or a located error for the ways a path can fail to be a readable
    file: missing, a directory, a FIFO, socket or device (never opened: reading a FIFO
    would wait forever, a device may never end), no permission, too big, not UTF-8."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise _file_error(display, "no such file") from None
    except PermissionError:
        raise _file_error(display, "permission denied: a directory on the path cannot be searched") from None
    except OSError as exc:
        raise _file_error(display, f"cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        inside = path / "platform.yaml"
        hint = f"; did you mean {str(Path(display) / 'platform.yaml')!r}?" if inside.is_file() else ""
        raise _file_error(display, f"is a directory, not a file{hint}")
    if not stat.S_ISREG(info.st_mode):
        raise _file_error(display, f"is a {_kind(info.st_mode)}, not a regular file")
    if info.st_size > MAX_BYTES:
        raise _file_error(display, f"file is {info.st_size} bytes; the limit is {MAX_BYTES}")
    try:
        raw = path.read_bytes()
    except PermissionError:
        raise _file_error(display, "permission denied: no read permission on the file") from None
    except OSError as exc:
        raise _file_error(display, f"cannot be read ({exc.strerror or exc})") from None
    return decode(raw, display)


def _file_error(display: str, message: str) -> ConfigErrors:
    return ConfigErrors([ConfigIssue(display, 1, 1, "(file)", message)])


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


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


class _OneVersionResolver(VersionedResolver):
    """ruamel.yaml works out the document's YAML version again for every scalar (a third of
    the parse of a 2,000-user file); a parse has one document, so work it out once."""

    @property
    def versioned_resolver(self):  # type: ignore[override]
        resolvers = self.__dict__.get("_resolvers")
        if resolvers is None:
            resolvers = self.__dict__["_resolvers"] = VersionedResolver.versioned_resolver.fget(self)
        return resolvers


def parse(text: str, display: str) -> Document:
    """Parse YAML text into a Document, or raise ConfigErrors located in `display`."""
    yaml = YAML(typ="safe", pure=False)  # libyaml via ruamel.yaml.clib when present: ~10x faster
    yaml.Resolver = _OneVersionResolver
    try:
        documents = list(yaml.compose_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise ConfigErrors([ConfigIssue(display, line, col, "(yaml)", problem)]) from None
    except YAMLError as exc:
        message = " ".join(str(exc).split())[:200]
        raise ConfigErrors([ConfigIssue(display, 1, 1, "(yaml)", message)]) from None
    except RecursionError:
        raise ConfigErrors([ConfigIssue(display, 1, 1, "(yaml)", "nesting is too deep")]) from None
    documents = [document for document in documents if document is not None]
    if len(documents) != 1:
        if not documents:
            raise ConfigErrors([ConfigIssue(display, 1, 1, "(root)", "the file is empty")])
        raise ConfigErrors(
            [ConfigIssue(display, 1, 1, "(root)", f"expected one YAML document, found {len(documents)}")]
        )
    root = documents[0]
    if isinstance(root, ScalarNode) and root.tag.endswith(":null"):
        raise ConfigErrors([ConfigIssue(display, 1, 1, "(root)", "the file is empty")])
    if not isinstance(root, MappingNode):
        kind = "list" if isinstance(root, SequenceNode) else "scalar"
        raise ConfigErrors([ConfigIssue(display, 1, 1, "(root)", f"expected a mapping of sections, got a {kind}")])
    positions = Positions()
    positions.values[()] = (1, 1)
    builder = _Builder(yaml, positions)
    try:
        data = builder.plain(root, ())
    except _TooBig as exc:
        line, col = positions.of_value(exc.path)
        raise ConfigErrors([ConfigIssue(display, line, col, "(yaml)", exc.reason)]) from None
    except _Duplicate as exc:
        raise ConfigErrors([ConfigIssue(display, exc.line, exc.col, "(yaml)", exc.reason)]) from None
    except YAMLError as exc:  # a scalar that its tag cannot construct, e.g. a bad !!int
        message = " ".join(str(exc).split())[:200]
        raise ConfigErrors([ConfigIssue(display, 1, 1, "(yaml)", message)]) from None
    return Document(display, data, positions)


def load(path: Path, display: str | None = None) -> Document:
    display = display or str(path)
    return parse(read_text(path, display), display)


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Duplicate(Exception):
    def __init__(self, line: int, col: int, reason: str):
        self.line, self.col, self.reason = line, col, reason


class _Builder:
    """Copies a composed node graph into plain data, recording every position.

    Aliases make the node graph a DAG (or a cycle); expanding it is counted against
    MAX_NODES so an alias bomb is refused instead of exhausting memory.
    """

    def __init__(self, yaml: YAML, positions: Positions):
        self.constructor = yaml.constructor
        self.positions = positions
        self.count = 0

    def plain(self, node: Node, path: Path_, ancestors: tuple[int, ...] = ()) -> object:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(path, f"the document expands to more than {MAX_NODES} nodes (YAML alias bomb?)")
        if len(path) > MAX_DEPTH:
            raise _TooBig(path, f"nesting deeper than {MAX_DEPTH} levels")
        if id(node) in ancestors:
            raise _TooBig(path, "a YAML alias refers to itself (recursive structure)")
        inner = (*ancestors, id(node))
        if isinstance(node, MappingNode):
            return self._mapping(node, path, inner)
        if isinstance(node, SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                child = (*path, index)
                self.positions.values.setdefault(child, _mark(item))
                items.append(self.plain(item, child, inner))
            return items
        return _scalar(self.constructor.construct_object(node, deep=True))

    def _mapping(self, node: MappingNode, path: Path_, inner: tuple[int, ...]) -> dict:
        result: dict[object, object] = {}
        merged: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag.endswith(":merge"):
                merged.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                line, col = _mark(key_node)
                raise _Duplicate(line, col, "a mapping key must be a plain value, not a list or mapping")
            key = _scalar(self.constructor.construct_object(key_node))
            if key in result:
                line, col = _mark(key_node)
                raise _Duplicate(line, col, f"duplicate key {key!r} (each key may appear once)")
            child = (*path, key)
            self.positions.keys.setdefault(child, _mark(key_node))
            self.positions.values.setdefault(child, _mark(value_node))
            result[key] = self.plain(value_node, child, inner)
        for source in merged:  # YAML merge keys (<<: *defaults): explicit keys win
            sources = source.value if isinstance(source, SequenceNode) else [source]
            for item in sources:
                extra = self.plain(item, path, inner)
                if isinstance(extra, dict):
                    for key, value in extra.items():
                        result.setdefault(key, value)
        return result


def _scalar(value: object) -> object:
    """Plain Python values for what the constructor made (dates stay as their text)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)
