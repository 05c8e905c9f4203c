"""platform.yaml -> Platform, or every problem located at `file:LINE:COL`."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import ValidationError

from render import checks, loader, upgrade
from render.errors import ConfigErrors, ConfigIssue, dotted
from render.schema import Platform, json_schema

_FRIENDLY = {
    "int_type": "expected a whole number",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "string_type": "expected a string (quote it)",
    "dict_type": "expected a mapping",
    "list_type": "expected a list",
    "model_type": "expected a mapping",
    "missing": "required key is missing",
}


def load_platform(path: Path, display: str | None = None) -> Platform:
    """Load and validate a platform.yaml file; raises ConfigErrors."""
    return validate_document(loader.load(path, display))


def load_platform_and_warnings(path: Path, display: str | None = None) -> tuple[Platform, list[ConfigIssue]]:
    """Like load_platform, and the warnings of a valid file too (`platform validate`)."""
    platform, issues = check_document(loader.load(path, display))
    return _valid(platform, issues), [issue for issue in issues if issue.severity == "warning"]


def validate_text(text: str, display: str = "platform.yaml") -> Platform:
    return validate_document(loader.parse(text, display))


def validate_document(document: loader.Document) -> Platform:
    """The Platform, or ConfigErrors with every error (warnings ride along apart)."""
    return _valid(*check_document(document))


def _valid(platform: Platform | None, issues: list[ConfigIssue]) -> Platform:
    errors = [issue for issue in issues if issue.severity == "error"]
    if platform is None or errors:
        raise ConfigErrors(errors, [issue for issue in issues if issue.severity != "error"])
    return platform


def check_document(document: loader.Document) -> tuple[Platform | None, list[ConfigIssue]]:
    """The Platform (None when the schema refuses it) and every error and warning."""
    issues: list[ConfigIssue] = []
    platform: Platform | None = None
    try:
        platform = Platform.model_validate(document.data)
    except ValidationError as exc:
        issues.extend(_from_pydantic(exc, document))
    refused = {issue.field for issue in issues}  # one error per mistake: the schema's says it already
    for finding in checks.check(document.data):
        if dotted(finding.path) in refused:
            continue
        position = document.positions.of_key if finding.at_key else document.positions.of_value
        line, col = position(finding.path)
        issues.append(
            ConfigIssue(document.file, line, col, dotted(finding.path), finding.message, finding.severity)
        )
    return platform, issues


def _from_pydantic(exc: ValidationError, document: loader.Document) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        kind = error["type"]
        if loc and loc[-1] == "[key]":
            path = loc[:-1]
            line, col = document.positions.of_key(path)
            message = f"invalid name {path[-1]!r}: {_message(error)}"
        elif kind == "extra_forbidden":
            path = loc
            line, col = document.positions.of_key(path)
            allowed = allowed_keys(loc[:-1])
            message = f"unknown key {loc[-1]!r}{checks.suggest(loc[-1], allowed)}"
            if allowed:
                message += f"; allowed here: {', '.join(allowed)}"
        elif kind == "missing":
            path = loc
            line, col = document.positions.of_key(loc[:-1]) if len(loc) > 1 else (1, 1)
            message = f"required key {loc[-1]!r} is missing"
        elif loc == ("apiVersion",) and kind == "literal_error":
            path = loc
            line, col = document.positions.of_value(path)
            message = upgrade.describe(error["input"])
        else:
            path = _strip_union_tags(loc)
            line, col = document.positions.of_value(path)
            message = _message(error)
        issues.append(ConfigIssue(document.file, line, col, dotted(path), message))
    return issues


_UNION_TAGS = {"str", "int", "float", "bool", "none"}


def _strip_union_tags(loc: tuple) -> tuple:
    """pydantic names union members in locations (e.g. 'function-after[...]'); drop them."""
    return tuple(part for part in loc if not (isinstance(part, str) and ("[" in part or part in _UNION_TAGS)))


def _message(error: dict) -> str:
    kind = error["type"]
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"{error['input']!r} is not allowed; expected {expected}"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        return f"{error['input']!r} is not valid here (must match {pattern})"
    if kind in _FRIENDLY:
        got = error.get("input")
        return f"{_FRIENDLY[kind]}, got {type(got).__name__} {got!r}"[:200]
    return str(error["msg"])


@cache
def _schema() -> dict:
    return json_schema()


def allowed_keys(loc: tuple) -> list[str]:
    """The keys the schema allows in the mapping at `loc`, for "did you mean" hints."""
    schema = _schema()
    node: dict = schema
    for part in loc:
        node = _resolve(node, schema)
        if isinstance(part, int):
            node = node.get("items", {})
        elif "properties" in node and part in node["properties"]:
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return []
    node = _resolve(node, schema)
    return sorted(node.get("properties", {}))


def _resolve(node: dict, schema: dict) -> dict:
    while True:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].split("/")[-1]]
        elif "anyOf" in node:
            node = next((option for option in node["anyOf"] if option.get("type") != "null"), {})
        else:
            return node
