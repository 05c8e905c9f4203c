"""Requests checked against a discovery document, refused as the real APIs refuse them: the
one validator of every fake Google API in the tests (Compute's, tests/support/gce; Secret
Manager's and Cloud Logging's, tests/support/gcp), and of the answers they build.

What is checked: path parameters against their patterns; query parameters known to the
method or the system (unknown ones refused), typed and in their enums, required ones
present; the body against the request schema: unknown fields (proto3 JSON: a field's proto
name is as good as its JSON name), JSON types, enums (by name, or by number as clients
asking `enum-encoding=int` send them), base64 bytes, field patterns (resource names) and the
fields the document marks required for this method (`annotations.required`). Output-only
fields are accepted and ignored, as Compute does.

The error bodies copy the real APIs': the ESF's `Invalid JSON payload received ...` for
what does not parse into the request message, Compute's own `Invalid value for field` /
`Required field ... not specified` for what it checks itself; `rpc_error` for the
canonical-status errors (`INVALID_ARGUMENT`, `NOT_FOUND`...) the newer APIs answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping

from tests.support.gce.discovery import Document, Method

_INTEGER = re.compile(r"-?[0-9]+")
# Query parameters every Google API takes; `$alt`, `$fields`... are their system aliases.
_ALIASES = {"$alt": "alt", "$fields": "fields", "$prettyPrint": "prettyPrint", "$callback": "callback"}


class ApiError(Exception):
    """An error answer of the API: HTTP status and the JSON body it sends."""

    def __init__(self, status: int, message: str, reason: str, *, domain: str = "global",
                 rpc_status: str | None = None, field: str | None = None, extra: Mapping | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason
        self.domain, self.rpc_status, self.field, self.extra = domain, rpc_status, field, dict(extra or {})

    def body(self) -> dict:
        error: dict = {"code": self.status, "message": self.message,
                       "errors": [{"message": self.message, "domain": self.domain, "reason": self.reason,
                                   **self.extra}]}
        if self.rpc_status:
            error["status"] = self.rpc_status
        if self.field is not None:
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                 "fieldViolations": [{"field": self.field, "description": self.message}]}]
        return {"error": error}


def rpc_error(code: int, status: str, message: str) -> ApiError:
    """An error with its canonical status (`NOT_FOUND`, `ALREADY_EXISTS`...), as the APIs on
    Google's newer front end answer it."""
    return ApiError(code, message, status.lower(), rpc_status=status)


def invalid(message: str) -> ApiError:
    """400 INVALID_ARGUMENT: what the API itself refuses in a request that parsed."""
    return rpc_error(400, "INVALID_ARGUMENT", message)


def payload_error(message: str, field: str) -> ApiError:
    """What the front end answers for a body or query that does not parse into the request message."""
    return ApiError(400, f"Invalid JSON payload received. {message}", "invalid", rpc_status="INVALID_ARGUMENT",
                    field=field)


def invalid_field(field: str, value, why: str) -> ApiError:
    return ApiError(400, f"Invalid value for field '{field}': '{value}'. {why}", "invalid")


def not_found(what: str) -> ApiError:
    return ApiError(404, f"The resource '{what}' was not found", "notFound")


def full_match(pattern: str, value: str) -> bool:
    return re.fullmatch(f"(?:{pattern})", value) is not None


class Validator:
    def __init__(self, document: Document) -> None:
        self.document = document

    # -- parameters ---------------------------------------------------------------------------

    def parameters(self, method: Method, path: Mapping[str, str], query: Mapping[str, list[str]]) -> dict:
        """The method's parameters, typed; an ApiError for anything the document does not allow."""
        for name, value in path.items():
            pattern = method.parameters.get(name, {}).get("pattern")
            if pattern and not full_match(pattern, value):
                raise ApiError(400, f"Invalid value '{value}'. Values must match the following regular "
                                    f"expression: '{pattern}'", "invalidParameter",
                               extra={"location": name, "locationType": "parameter"})
        values: dict = dict(path)
        for raw_name, raw_values in query.items():
            name = _ALIASES.get(raw_name, raw_name)
            definition = method.parameters.get(name) or self.document.system_parameters.get(name)
            if definition is None or definition.get("location") == "path":
                raise payload_error(f"Unknown name \"{raw_name}\": Cannot bind query parameter. Field "
                                    f"'{raw_name}' could not be found in request message.", raw_name)
            if name == "alt":  # the generated clients ask for `json;enum-encoding=int`
                raw_values = [value.split(";", 1)[0] for value in raw_values]
            if len(raw_values) > 1 and not definition.get("repeated"):
                raise payload_error(f"Invalid value at '{name}', repeated where one is expected", name)
            typed = [self._query_value(name, definition, value) for value in raw_values]
            values[name] = typed if definition.get("repeated") else typed[0]
        for name, definition in method.parameters.items():
            if definition.get("required") and name not in values:
                raise ApiError(400, f"Required parameter {name} is missing", "required",
                               extra={"location": name, "locationType": "parameter"})
        return values

    def _query_value(self, name: str, definition: dict, value: str):
        kind = definition.get("type", "string")
        if kind == "boolean":
            if value not in ("true", "false"):
                raise payload_error(f"Invalid value at '{name}' (TYPE_BOOL), \"{value}\"", name)
            return value == "true"
        if kind == "integer":
            if not _INTEGER.fullmatch(value):
                raise payload_error(f"Invalid value at '{name}' (TYPE_UINT32), \"{value}\"", name)
            number = int(value)
            low, high = definition.get("minimum"), definition.get("maximum")
            if (low is not None and number < int(low)) or (high is not None and number > int(high)):
                raise invalid_field(name, value, f"Must be between {low} and {high}.")
            return number
        if "enum" in definition and value not in definition["enum"]:
            raise payload_error(f"Invalid value at '{name}', \"{value}\"", name)
        if definition.get("pattern") and not full_match(definition["pattern"], value):
            raise invalid_field(name, value, f"Must be a match of regex '{definition['pattern']}'")
        return value

    # -- bodies -----------------------------------------------------------------------------

    def body(self, method: Method, body) -> None:
        if method.request is None:
            if body not in (None, {}):
                raise payload_error("Unknown name \"\": Root element must be a message.", "")
            return
        if not isinstance(body, dict):
            raise payload_error("Root element must be a message.", "resource")
        self.value(method.request, {"$ref": method.request}, body, "resource", method.id)

    def response(self, schema_name: str, value) -> None:
        """An answer a fake built, against the method's response schema."""
        self.value(schema_name, {"$ref": schema_name}, value, "response", None)

    def value(self, schema_name: str, schema: dict, value, where: str, method_id: str | None) -> None:
        """`value` at `where` against `schema`; `method_id` enables its required-field checks
        (None: a response being built, where nothing is required)."""
        if value is None:
            return  # JSON null is the field's default, as the proto JSON parser takes it
        if "$ref" in schema:
            schema_name, schema = schema["$ref"], self.document.schemas[schema["$ref"]]
        kind = schema.get("type", "object" if "properties" in schema else "any")
        if kind == "object":
            self._object(schema_name, schema, value, where, method_id)
        elif kind == "array":
            if not isinstance(value, list):
                raise payload_error(f"Invalid value at '{where}', expected a list", where)
            for index, item in enumerate(value):
                self.value(schema_name, schema.get("items", {}), item, f"{where}[{index}]", method_id)
        elif kind != "any":
            self._scalar(kind, schema, value, where)

    def _object(self, schema_name: str, schema: dict, value, where: str, method_id: str | None) -> None:
        if not isinstance(value, dict):
            raise payload_error(f"Invalid value at '{where}' ({schema_name}), {_show(value)}", where)
        properties = schema.get("properties")
        if properties is None:
            extra = schema.get("additionalProperties", {"type": "any"})
            for key, item in value.items():
                self.value(schema_name, extra, item, f"{where}[{key}]", method_id)
            return
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            definition = properties.get(key)
            if definition is None:  # proto3 JSON: the proto field name, or a map's key
                definition = properties.get(_camel(key), extra)
            if definition is None:
                raise payload_error(f"Unknown name \"{key}\" at '{where}': Cannot find field.", where)
            self.value(schema_name, definition, item, f"{where}.{key}", method_id)
        for key, definition in properties.items():
            required = method_id in definition.get("annotations", {}).get("required", ())
            if required and value.get(key) in (None, ""):
                raise ApiError(400, f"Required field '{where}.{key}' not specified", "required")
            pattern = definition.get("pattern")
            if pattern and isinstance(value.get(key), str) and not definition.get("readOnly") \
                    and not full_match(pattern, value[key]):
                raise invalid_field(f"{where}.{key}", value[key], f"Must be a match of regex '(?:{pattern})'")

    def _scalar(self, kind: str, schema: dict, value, where: str) -> None:
        format_ = schema.get("format", "")
        if kind == "boolean":
            ok = isinstance(value, bool)
            proto = "TYPE_BOOL"
        elif kind == "integer" or (kind == "string" and format_ in ("int64", "uint64")):
            # 64-bit integers travel as strings in proto JSON; numbers are accepted too.
            ok = (isinstance(value, int) and not isinstance(value, bool)) or \
                (isinstance(value, str) and _INTEGER.fullmatch(value) is not None)
            proto = f"TYPE_{(format_ or 'int32').upper()}"
        elif kind == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            proto = "TYPE_DOUBLE"
        elif "enum" in schema and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return  # an enum by number, as clients asking `enum-encoding=int` send it
        else:
            ok = isinstance(value, str) and (format_ != "byte" or _is_base64(value))
            proto = "TYPE_BYTES" if format_ == "byte" else "TYPE_STRING"
        if not ok:
            raise payload_error(f"Invalid value at '{where}' ({proto}), {_show(value)}", where)
        if "enum" in schema and value not in schema["enum"]:
            raise payload_error(f"Invalid value at '{where}' (enum), {_show(value)}", where)


def _show(value) -> str:
    return json.dumps(value)


def _camel(name: str) -> str:
    """`dry_run` -> `dryRun`: the JSON name of a proto field."""
    return re.sub(r"_([a-z0-9])", lambda match: match.group(1).upper(), name)


def _is_base64(value: str) -> bool:
    """Standard or URL-safe base64, padded or not, as proto3 JSON takes `bytes`."""
    try:
        base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True
