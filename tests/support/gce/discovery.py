"""A Google discovery document (Compute v1's, Secret Manager's, Logging's...): its methods
found by HTTP method and path, its schemas. Every fake Google API of the tests routes and
validates through it (tests/support/gce/validation.py).

google-api-python-client ships the documents (`discovery_cache/documents/NAME.json`); they
are what Google's own clients are generated from, so they say which requests the real APIs
accept for shape: paths, parameters, their patterns and types, body schemas, enums.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path


def shipped_document(name: str = "compute.v1.json") -> Path:
    import googleapiclient

    return Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / name


@dataclass(frozen=True)
class Method:
    id: str  # e.g. compute.instances.insert
    http_method: str
    path: str  # relative to the service path, with {param} placeholders
    parameters: dict
    request: str | None  # schema name of the body
    response: str | None


class Document:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or shipped_document()
        document = json.loads(self.path.read_text())
        self.service_path = ("/" + document["servicePath"].strip("/")).rstrip("/")  # /compute/v1, or ""
        self.system_parameters: dict = document.get("parameters", {})
        self.schemas: dict[str, dict] = document["schemas"]
        self.methods: dict[str, Method] = {}
        self._routes: list[tuple[str, re.Pattern, Method]] = []
        self._collect(document.get("resources", {}))

    def _collect(self, resources: dict) -> None:
        for resource in resources.values():
            for definition in resource.get("methods", {}).values():
                method = Method(
                    id=definition["id"], http_method=definition["httpMethod"], path=_routed_path(definition),
                    parameters=definition.get("parameters", {}),
                    request=(definition.get("request") or {}).get("$ref"),
                    response=(definition.get("response") or {}).get("$ref"),
                )
                self.methods[method.id] = method
                self._routes.append((method.http_method, _route_pattern(method.path), method))
            self._collect(resource.get("resources", {}))
        # Literal segments beat placeholders (e.g. .../instances/bulkInsert over .../instances/{instance}),
        # then longer literal text ({+name}:access over {+name}).
        self._routes.sort(key=lambda route: (-route[2].path.count("/") * 100 + route[2].path.count("{"),
                                             -len(re.sub(r"\{[^}]*\}", "", route[2].path))))

    def route(self, http_method: str, path: str) -> tuple[Method, dict[str, str]] | None:
        """The method serving `path` (below the service path) and its path parameters."""
        relative = path[len(self.service_path):].lstrip("/") if path.startswith(self.service_path + "/") else None
        if relative is None:
            return None
        for verb, pattern, method in self._routes:
            if verb == http_method and (match := pattern.fullmatch(relative)) and _spans_fit(method, match):
                return method, match.groupdict()
        return None

    def build(self, schema: str, **fields) -> dict:
        """A resource of `schema` with its `kind` filled in from the document's default."""
        kind = self.schemas[schema].get("properties", {}).get("kind", {}).get("default")
        return {"kind": kind, **fields} if kind else dict(fields)


def _routed_path(definition: dict) -> str:
    """The flat path where its placeholders are the method's parameters (Compute's), else the
    path with its `{+name}` placeholders (Secret Manager's `v1/{+name}:access`)."""
    flat = definition.get("flatPath")
    if flat and set(re.findall(r"\{(\w+)\}", flat)) <= set(definition.get("parameters", {})):
        return flat
    return definition["path"]


def _spans_fit(method: Method, match: re.Match) -> bool:
    """A `{+name}` value fits its parameter's pattern: that is what tells `v1/{+name}` of a
    secret from that of a version."""
    for name in re.findall(r"\{\+(\w+)\}", method.path):
        pattern = method.parameters.get(name, {}).get("pattern")
        if pattern and not re.match(pattern, match.group(name)):
            return False
    return True


def _route_pattern(path: str) -> re.Pattern:
    # A placeholder is one path segment; `{+name}` may span several.
    regex = re.sub(r"\\\{\\\+(\w+)\\\}", r"(?P<\1>.+)", re.escape(path))
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
    return re.compile(regex)


@cache
def compute_document(path: Path | None = None) -> Document:
    return Document(path)


@cache
def load(name: str) -> Document:
    """`load("secretmanager.v1")`: the shipped document, parsed once per process."""
    return Document(shipped_document(f"{name}.json"))
