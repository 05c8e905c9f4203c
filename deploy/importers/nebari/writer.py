"""The imported platform as YAML text, with `# TODO(import): ...` comments where the
import had to invent a value (ruamel.yaml round-trip objects carry the comments)."""

from __future__ import annotations

import io

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq


def to_yaml(document: dict, todos: dict[tuple, str], header: str) -> str:
    tree = _commented(document, ())
    for path, text in sorted(todos.items(), key=lambda item: str(item[0])):
        _attach(tree, path, text)
    tree.yaml_set_start_comment(header)
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # one TODO, one line
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()


def _commented(node: object, path: tuple) -> object:
    if isinstance(node, dict):
        mapping = CommentedMap()
        for key, value in node.items():
            mapping[key] = _commented(value, (*path, key))
        return mapping
    if isinstance(node, list):
        sequence = CommentedSeq(_commented(item, (*path, index)) for index, item in enumerate(node))
        if all(isinstance(item, str | int | float) for item in node):
            sequence.fa.set_flow_style()  # [a, b]: short lists of names stay on one line
        return sequence
    return node


def _attach(tree: object, path: tuple, text: str) -> None:
    """An end-of-line comment on the key (or item) at `path`; a mapping's comment goes above it."""
    parent: object = tree
    for part in path[:-1]:
        parent = parent[part]  # type: ignore[index]
    key = path[-1]
    value = parent[key]  # type: ignore[index]
    if isinstance(value, CommentedMap) and isinstance(parent, CommentedMap):
        parent.yaml_set_comment_before_after_key(key, before=text, indent=_indent(path))
    elif isinstance(parent, CommentedMap | CommentedSeq):
        parent.yaml_add_eol_comment(text, key)


def _indent(path: tuple) -> int:
    return 2 * (len(path) - 1)
