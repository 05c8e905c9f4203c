"""The list filters the fake understands: Compute's `(field op value)` expressions.

`labels.platform = "oceanlab"`, `(name = "a") OR (name = "b")`, `(labels.x = "y") AND
(status != "TERMINATED")`: comparisons with `=` or `!=` on a top-level string field or a
label, joined by AND or OR (one of the two per filter), parentheses optional. Anything
else is refused with a 400 rather than guessed at: the fake must not read a filter more
generously than Compute does.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.support.gce.validation import ApiError

_TERM = re.compile(r"""\s*\(?\s*([A-Za-z][\w.-]*)\s*(!=|=)\s*(?:"([^"]*)"|'([^']*)'|([^\s()]+))\s*\)?\s*""")
_JOIN = re.compile(r"\s*(AND|OR)\s*|\s+")


def parse(expression: str) -> Callable[[dict], bool]:
    """A predicate on a resource (its JSON) for `expression`; everything matches ''."""
    terms, joins, rest = [], set(), expression.strip()
    while rest:
        match = _TERM.match(rest)
        if not match:
            raise _invalid(expression)
        field, op, *values = match.groups()
        terms.append((field, op, next(v for v in values if v is not None)))
        rest = rest[match.end():]
        if rest:
            join = _JOIN.match(rest)
            if not join:
                raise _invalid(expression)
            joins.add(join.group(1) or "AND")
            rest = rest[join.end():]
    if len(joins) > 1:
        raise _invalid(expression)
    combine = any if joins == {"OR"} else all
    return lambda resource: combine(_compare(resource, *term) for term in terms)


def _compare(resource: dict, field: str, op: str, value: str) -> bool:
    if field.startswith("labels."):
        actual = resource.get("labels", {}).get(field.split(".", 1)[1])
    else:
        actual = resource.get(field)
        actual = str(actual).lower() if isinstance(actual, bool) else actual
    return (actual == value) == (op == "=")


def _invalid(expression: str) -> ApiError:
    return ApiError(400, f"Invalid value for field 'filter': '{expression}'. Invalid list filter expression.",
                    "invalid")
