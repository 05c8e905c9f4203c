"""A subset of the Logging query language (test support), for the Cloud Logging fake's
entries.list filters and its log sinks' filters.

Understood: comparisons `FIELD OP VALUE` with OP one of `= != =~ !~ > >= < <= :`, FIELD a
dotted path into the entry (`logName`, `timestamp`, `resource.type`,
`resource.labels.zone`, `labels."compute.googleapis.com/resource_name"`), VALUE a quoted
string or a bare word; AND, OR, NOT, juxtaposition (an implicit AND) and parentheses,
with the language's precedence: NOT, then OR, then AND (`a AND b OR c` is `a AND (b OR
c)`). Timestamps compare as instants. Anything else
raises FilterError, which the fake answers as Google does a malformed query: 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

Entry = dict
Predicate = Callable[[Entry], bool]

_TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>=~|!~|!=|>=|<=|=|>|<|:)|(?P<paren>[()])'
                    r'|(?P<word>[A-Za-z_][\w\-/]*(?:\.(?:[A-Za-z_][\w\-/]*|"(?:[^"\\]|\\.)*"))*))')
_KEYWORDS = {"AND", "OR", "NOT"}


class FilterError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    found, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise FilterError(f"Unparseable filter: unexpected text at {position}: {text[position:position + 20]!r}")
        kind = match.lastgroup
        found.append((kind, match.group(kind)))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return found


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith('"') else value


def _path(word: str) -> list[str]:
    parts = re.findall(r'"(?:[^"\\]|\\.)*"|[^.]+', word)
    return [_unquote(part) for part in parts]


def _lookup(entry: Entry, path: list[str]):
    node = entry
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _instant(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _compare(op: str, found, wanted: str, is_time: bool) -> bool:
    if found is None:
        return op in ("!=", "!~")
    if op in ("=~", "!~"):
        hit = re.search(wanted, str(found)) is not None
        return hit if op == "=~" else not hit
    if op == ":":
        return wanted.lower() in str(found).lower()
    left, right = (_instant(str(found)), _instant(wanted)) if is_time else (str(found), wanted)
    if left is None or right is None:
        raise FilterError(f"Invalid timestamp in filter: {wanted!r}")
    return {"=": left == right, "!=": left != right, ">": left > right, ">=": left >= right,
            "<": left < right, "<=": left <= right}[op]


class _Parser:
    """expression := conjunct (AND? conjunct)*; conjunct := term (OR term)*; term := NOT? factor.
    In the Logging query language OR binds tighter than AND (`a AND b OR c` is `a AND (b OR c)`)."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.at = tokens, 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("Unparseable filter: it ends too early")
        self.at += 1
        return token

    def expression(self) -> Predicate:
        parts = [self.disjunction()]
        while (token := self.peek()) is not None and token != ("paren", ")"):
            if token == ("word", "AND"):
                self.take()
            parts.append(self.disjunction())
        return lambda entry: all(part(entry) for part in parts)

    def disjunction(self) -> Predicate:
        parts = [self.term()]
        while self.peek() == ("word", "OR"):
            self.take()
            parts.append(self.term())
        return lambda entry: any(part(entry) for part in parts)

    def term(self) -> Predicate:
        if self.peek() == ("word", "NOT"):
            self.take()
            inner = self.term()
            return lambda entry: not inner(entry)
        if self.peek() == ("paren", "("):
            self.take()
            inner = self.expression()
            if self.take() != ("paren", ")"):
                raise FilterError("Unparseable filter: a parenthesis is not closed")
            return inner
        kind, word = self.take()
        if kind != "word" or word in _KEYWORDS:
            raise FilterError(f"Unparseable filter: expected a field, got {word!r}")
        kind, op = self.take()
        if kind != "op":
            raise FilterError(f"Unparseable filter: expected a comparison after {word}, got {op!r}")
        kind, value = self.take()
        if kind not in ("string", "word"):
            raise FilterError(f"Unparseable filter: expected a value after {word}{op}, got {value!r}")
        path, wanted = _path(word), _unquote(value)
        is_time = path[-1] in ("timestamp", "receiveTimestamp")
        if op in ("=~", "!~"):
            try:
                re.compile(wanted)
            except re.error as error:
                raise FilterError(f"Invalid regular expression {wanted!r}: {error}") from None
        return lambda entry: _compare(op, _lookup(entry, path), wanted, is_time)


def parse(text: str) -> Predicate:
    """A predicate on entries (JSON dicts, as written); the empty filter matches all."""
    tokens = _tokens(text or "")
    if not tokens:
        return lambda entry: True
    parser = _Parser(tokens)
    predicate = parser.expression()
    if parser.peek() is not None:
        raise FilterError(f"Unparseable filter: unexpected {parser.peek()[1]!r}")
    return predicate
