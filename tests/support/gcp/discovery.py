"""Requests and responses checked against a Google discovery document (test support).

The documents are the ones google-api-python-client ships
(`googleapiclient/discovery_cache/documents/NAME.json`), i.e. what Google publishes for
the API. `Discovery.route(method, path, query, body)` finds the API method a request
calls, then refuses, as Google's front end does with a 400 INVALID_ARGUMENT, what the
document does not allow: a path parameter off its pattern, an unknown or repeated-when-
single query parameter, a bad enum value or number, and a body with an unknown field or
a value of the wrong type. `check(schema, value)` validates a response the fakes build,
so they cannot drift from the document either way.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# System parameters every Google API accepts (the google-api-core REST transport sends `$alt`).
_SYSTEM_QUERY = {"$alt", "$.xgafv", "alt", "fields", "key", "prettyPrint", "quotaUser", "access_token", "callback",
                 "oauth_token", "upload_protocol", "uploadType", "$fields", "$prettyPrint"}
_INTEGER_FORMATS = {"int32", "uint32", "int64", "uint64"}


class ApiError(Exception):
    """An error Google's APIs answer: HTTP status, canonical status name and message."""

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message

    def body(self) -> bytes:
        return json.dumps({"error": {"code": self.code, "message": self.message, "status": self.status}}).encode()


def _camel(name: str) -> str:
    """`dry_run` -> `dryRun`: the JSON name of a proto field."""
    return re.sub(r"_([a-z0-9])", lambda match: match.group(1).upper(), name)


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


@dataclass(frozen=True)
class Route:
    method_id: str                  # e.g. secretmanager.projects.secrets.create
    path_params: dict[str, str]
    query: dict[str, list[str]]
    request_schema: str | None
    response_schema: str | None


def documents_dir() -> Path:
    import googleapiclient

    return Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"


@cache
def load(name: str) -> Discovery:
    """`load("secretmanager.v1")`: the shipped document, parsed once per process."""
    return Discovery(json.loads((documents_dir() / f"{name}.json").read_text()))


def _template_regex(template: str) -> re.Pattern:
    """`v1/{+name}:access` -> a regex with one group per parameter ({+x} may span slashes)."""
    pattern, position = "", 0
    for match in re.finditer(r"\{(\+?)([^}]+)\}", template):
        pattern += re.escape(template[position:match.start()])
        name = re.sub(r"\W", "_", match.group(2))
        pattern += f"(?P<{name}>.+?)" if match.group(1) else f"(?P<{name}>[^/]+)"
        position = match.end()
    return re.compile(pattern + re.escape(template[position:]) + "$")


class Discovery:
    def __init__(self, document: dict) -> None:
        self.document = document
        self.schemas: dict[str, dict] = document["schemas"]
        self.service_path: str = document.get("servicePath", "")
        self.methods: list[tuple[re.Pattern, dict]] = []
        self._collect(document)

    def _collect(self, node: dict) -> None:
        for method in node.get("methods", {}).values():
            self.methods.append((_template_regex(self.service_path + method["path"]), method))
        for child in node.get("resources", {}).values():
            self._collect(child)

    def route(self, http_method: str, path: str, query: dict[str, list[str]], body: bytes | None) -> Route:
        """The method this request calls, its request validated; raises ApiError (404 for no method)."""
        path = path.lstrip("/")
        for regex, method in self.methods:
            match = regex.match(path)
            if not match or method["httpMethod"] != http_method:
                continue
            parameters = method.get("parameters", {})
            values = {name: value for name, value in match.groupdict().items()}
            if not all(self._path_value_fits(parameters, name, value) for name, value in values.items()):
                continue
            self._check_query(method, query)
            self._check_body(method, body)
            return Route(method["id"], values, query, method.get("request", {}).get("$ref"),
                         method.get("response", {}).get("$ref"))
        raise ApiError(404, "NOT_FOUND", f"The requested URL /{path} was not found on this server.")

    @staticmethod
    def _path_value_fits(parameters: dict, name: str, value: str) -> bool:
        pattern = parameters.get(name, {}).get("pattern")
        return pattern is None or re.match(pattern, value) is not None

    def _check_query(self, method: dict, query: dict[str, list[str]]) -> None:
        parameters = method.get("parameters", {})
        for name, values in query.items():
            if name in _SYSTEM_QUERY:
                continue
            spec = parameters.get(name)
            if spec is None or spec.get("location") != "query":
                raise invalid(f"Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query parameter. "
                              f"Field '{name}' could not be found in request message.")
            if len(values) > 1 and not spec.get("repeated"):
                raise invalid(f"Invalid JSON payload received. Repeated values for field '{name}'.")
            for value in values:
                self._check_scalar(spec, value, name, from_query=True)
        for name, spec in parameters.items():
            if spec.get("required") and spec.get("location") == "query" and name not in query:
                raise invalid(f"Required parameter {name} is missing.")

    def _check_body(self, method: dict, body: bytes | None) -> None:
        schema = method.get("request", {}).get("$ref")
        if not body:
            return  # an empty body is an empty message, which the API accepts
        if schema is None:
            raise invalid("Invalid JSON payload received. This method takes no request body.")
        try:
            value = json.loads(body)
        except ValueError as error:
            raise invalid(f"Invalid JSON payload received. {error}.") from None
        self.check(schema, value)

    def check(self, schema_name: str, value, where: str = "") -> None:
        """Validate `value` against schema `schema_name` (raises ApiError 400 naming the field)."""
        self._check_value({"$ref": schema_name}, value, where)

    def _check_value(self, spec: dict, value, where: str) -> None:
        if "$ref" in spec:
            spec = self.schemas[spec["$ref"]]
        kind = spec.get("type")
        if value is None:
            return  # JSON null is the field's default in proto3 JSON
        if kind == "object":
            self._check_object(spec, value, where)
        elif kind == "array":
            if not isinstance(value, list):
                raise invalid(f"Invalid value at '{where}': expected a list, got {json.dumps(value)[:40]}.")
            for index, item in enumerate(value):
                self._check_value(spec.get("items", {}), item, f"{where}[{index}]")
        else:
            self._check_scalar(spec, value, where)

    def _check_object(self, spec: dict, value, where: str) -> None:
        if not isinstance(value, dict):
            raise invalid(f"Invalid value at '{where}': expected an object, got {json.dumps(value)[:40]}.")
        properties = spec.get("properties", {})
        extra = spec.get("additionalProperties")
        for key, item in value.items():
            inner = f"{where}.{key}" if where else key
            if key in properties:
                self._check_value(properties[key], item, inner)
            elif _camel(key) in properties:  # proto3 JSON: parsers take the proto field name too
                self._check_value(properties[_camel(key)], item, inner)
            elif extra is not None:
                self._check_value(extra, item, inner)
            else:
                raise invalid(f"Invalid JSON payload received. Unknown name \"{key}\" at '{where or 'body'}': "
                              "Cannot find field.")

    @staticmethod
    def _check_scalar(spec: dict, value, where: str, from_query: bool = False) -> None:
        kind, fmt = spec.get("type"), spec.get("format")
        bad = invalid(f"Invalid value at '{where}' ({kind}{'/' + fmt if fmt else ''}), {json.dumps(value)[:60]}")
        if kind == "boolean":
            if not (isinstance(value, bool) or (from_query and value in ("true", "false"))):
                raise bad
        elif kind == "integer" or fmt in _INTEGER_FORMATS:
            text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else None
            if text is None or not re.fullmatch(r"-?\d+", text) or (fmt and fmt.startswith("u") and text[0] == "-"):
                raise bad
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise bad
        elif kind == "string":
            if "enum" in spec and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return  # an enum by number, as clients asking `enum-encoding=int` send it
            if not isinstance(value, str):
                raise bad
            if fmt == "byte":
                try:
                    base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4),
                                     validate=True)
                except (binascii.Error, ValueError):
                    raise bad from None
            if "enum" in spec and value not in spec["enum"]:
                raise invalid(f"Invalid value at '{where}', \"{value}\": not one of {', '.join(spec['enum'])}")
