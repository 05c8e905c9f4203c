"""What changed between two builds: file by file, and resource by resource for Terraform.

Pure functions over `{relative path: bytes}` mappings (what `render.build.render`
returns, or a build directory read back), so that `platform diff` and the pull-request
comment show the same thing. Terraform JSON is compared per address (`type.name`,
`data.type.name`, `output.name`, ...) with the changed attributes as dotted paths; other
JSON files by key path; anything else as a unified text diff.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from render.build import MANIFEST

Action = Literal["added", "removed", "changed"]
MAX_TEXT_LINES = 200
_ABSENT = object()  # marks "no value on this side" in attribute changes


@dataclass(frozen=True)
class ValueChange:
    path: str
    old: object = _ABSENT
    new: object = _ABSENT

    def as_dict(self) -> dict:
        result: dict[str, object] = {"path": self.path}
        if self.old is not _ABSENT:
            result["old"] = self.old
        if self.new is not _ABSENT:
            result["new"] = self.new
        return result


@dataclass(frozen=True)
class ResourceChange:
    address: str  # `type.name`, `data.type.name`, `output.name`, `provider.name`, `terraform`...
    action: Action
    attributes: tuple[ValueChange, ...] = ()

    @property
    def is_resource(self) -> bool:
        """A managed resource (what `terraform plan` counts), not data, outputs or settings."""
        head = self.address.split(".", 1)[0]
        return "." in self.address and head not in ("data", "output", "variable", "module", "provider")

    def as_dict(self) -> dict:
        return {
            "address": self.address,
            "action": self.action,
            "attributes": [change.as_dict() for change in self.attributes],
        }


@dataclass(frozen=True)
class FileChange:
    path: str
    action: Action
    resources: tuple[ResourceChange, ...] = ()  # Terraform JSON
    keys: tuple[ValueChange, ...] = ()  # other JSON
    text: tuple[str, ...] = ()  # anything else: unified diff lines

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "action": self.action,
            "resources": [resource.as_dict() for resource in self.resources],
            "keys": [change.as_dict() for change in self.keys],
            "text": list(self.text),
        }


@dataclass(frozen=True)
class BuildDiff:
    files: tuple[FileChange, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.files

    def resources(self) -> Iterator[ResourceChange]:
        for change in self.files:
            yield from change.resources

    def summary(self) -> dict[str, int]:
        files = [change.action for change in self.files]
        resources = [change.action for change in self.resources() if change.is_resource]
        return {
            "files_added": files.count("added"),
            "files_removed": files.count("removed"),
            "files_changed": files.count("changed"),
            "resources_added": resources.count("added"),
            "resources_removed": resources.count("removed"),
            "resources_changed": resources.count("changed"),
        }

    def as_dict(self) -> dict:
        return {"summary": self.summary(), "files": [change.as_dict() for change in self.files]}


def diff_builds(
    old: Mapping[str, bytes], new: Mapping[str, bytes], ignore: tuple[str, ...] = (MANIFEST,)
) -> BuildDiff:
    """Every difference from `old` to `new`; the manifest is ignored (it only echoes the rest)."""
    changes = []
    for path in sorted((set(old) | set(new)) - set(ignore)):
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        if before is None or after is None:
            action: Action = "added" if before is None else "removed"
            resources = _terraform_resources(after if before is None else before, path)
            changes.append(
                FileChange(
                    path,
                    action,
                    resources=tuple(ResourceChange(address, action) for address in sorted(resources or {})),
                )
            )
        else:
            changes.append(_changed_file(path, before, after))
    return BuildDiff(tuple(changes))


def _changed_file(path: str, before: bytes, after: bytes) -> FileChange:
    old_resources, new_resources = _terraform_resources(before, path), _terraform_resources(after, path)
    if old_resources is not None and new_resources is not None:
        return FileChange(path, "changed", resources=tuple(_resource_changes(old_resources, new_resources)))
    old_json, new_json = _json(before), _json(after)
    if old_json is not _ABSENT and new_json is not _ABSENT:
        return FileChange(path, "changed", keys=tuple(_value_changes(old_json, new_json)))
    return FileChange(path, "changed", text=tuple(_text_diff(path, before, after)))


def _json(data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return _ABSENT


def _terraform_resources(data: bytes, path: str) -> dict[str, object] | None:
    """Address -> block for a Terraform JSON file, None for any other file."""
    if not path.endswith(".tf.json"):
        return None
    document = _json(data)
    if not isinstance(document, dict):
        return None
    blocks: dict[str, object] = {}
    for section, content in document.items():
        if section in ("resource", "data") and isinstance(content, dict):
            prefix = "data." if section == "data" else ""
            for kind, named in content.items():
                for name, block in (named.items() if isinstance(named, dict) else ()):
                    blocks[f"{prefix}{kind}.{name}"] = block
        elif section in ("output", "variable", "module", "provider") and isinstance(content, dict):
            for name, block in content.items():
                blocks[f"{section}.{name}"] = block
        else:  # `terraform` (backend, required providers), `locals`: one unit each
            blocks[section] = content
    return blocks


def _resource_changes(old: dict[str, object], new: dict[str, object]) -> Iterator[ResourceChange]:
    for address in sorted(set(old) | set(new)):
        if address not in old:
            yield ResourceChange(address, "added")
        elif address not in new:
            yield ResourceChange(address, "removed")
        elif old[address] != new[address]:
            yield ResourceChange(address, "changed", tuple(_value_changes(old[address], new[address])))


def _value_changes(old: object, new: object, prefix: str = "") -> Iterator[ValueChange]:
    """Changed values by dotted path; a subtree present on one side only is one change."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                yield ValueChange(path, new=new[key])
            elif key not in new:
                yield ValueChange(path, old=old[key])
            else:
                yield from _value_changes(old[key], new[key], path)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            yield from _value_changes(before, after, f"{prefix}[{index}]")
    elif old != new or type(old) is not type(new):
        yield ValueChange(prefix or "(value)", old, new)


def _text_diff(path: str, before: bytes, after: bytes) -> Iterator[str]:
    try:
        old_lines = before.decode().splitlines()
        new_lines = after.decode().splitlines()
    except UnicodeDecodeError:
        yield "(binary file differs)"
        return
    lines = list(difflib.unified_diff(old_lines, new_lines, f"a/{path}", f"b/{path}", lineterm="", n=2))
    yield from lines[2:MAX_TEXT_LINES + 2]  # the ---/+++ header only repeats the path
    if len(lines) > MAX_TEXT_LINES + 2:
        yield f"... ({len(lines) - MAX_TEXT_LINES - 2} more lines)"


_MARK = {"added": "+", "removed": "-", "changed": "~"}


def format_text(diff: BuildDiff) -> str:
    """Human-readable diff: one block per file, one line per resource or changed value."""
    if diff.empty:
        return "no changes to the rendered output\n"
    out: list[str] = []
    for change in diff.files:
        out.append(f"{_MARK[change.action]} {change.path}")
        for resource in change.resources:
            out.append(f"    {_MARK[resource.action]} {resource.address}")
            out.extend(f"        {_value_line(value)}" for value in resource.attributes)
        out.extend(f"    {_value_line(value)}" for value in change.keys)
        out.extend(f"    {line}" for line in change.text)
    counts = diff.summary()
    out.append(
        f"{len(diff.files)} file(s): {counts['files_added']} added, {counts['files_changed']} changed, "
        f"{counts['files_removed']} removed; Terraform: {counts['resources_added']} to add, "
        f"{counts['resources_changed']} to change, {counts['resources_removed']} to remove"
    )
    return "\n".join(out) + "\n"


def _value_line(change: ValueChange) -> str:
    if change.old is _ABSENT:
        return f"+ {change.path}: {_show(change.new)}"
    if change.new is _ABSENT:
        return f"- {change.path}: {_show(change.old)}"
    return f"~ {change.path}: {_show(change.old)} -> {_show(change.new)}"


def _show(value: object, limit: int = 100) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."
