"""Mutation operators: the small wrong answers a module could give.

One mutant changes one AST node: a comparison made strict or loose (`<` to `<=`), `==`
to `!=`, `in` to `not in`, `and` to `or`, `+` to `-`, an integer constant off by one in
either direction, a float constant moved, `True` to `False`, a condition negated, a
`not` dropped, a `raise` deleted, a `continue` made a `break`.

Nodes that cannot change behaviour are left alone, so a survivor is worth reading:
docstrings, function annotations (never evaluated under `from __future__ import
annotations`), arguments of logging calls, and `__all__`.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_COMPARE_SWAPS: dict[type, tuple[type, ...]] = {
    ast.Lt: (ast.LtE,),
    ast.LtE: (ast.Lt,),
    ast.Gt: (ast.GtE,),
    ast.GtE: (ast.Gt,),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
}
_BINOP_SWAPS: dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.Mult,
}
_SYMBOLS = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.And: "and", ast.Or: "or",
}  # fmt: skip
_LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}


@dataclass(frozen=True)
class Mutant:
    """The `index`-th node of an `ast.walk` over the module, changed by `variant`."""

    path: str
    index: int
    variant: int
    line: int
    end_line: int
    description: str

    def label(self) -> str:
        return f"{self.path}:{self.line}: {self.description}"


Change = tuple[str, Callable[[ast.AST], None]]


def _set(attr: str, value: object) -> Callable[[ast.AST], None]:
    def apply(node: ast.AST) -> None:
        setattr(node, attr, value)

    return apply


def _compare_changes(node: ast.Compare) -> list[Change]:
    changes: list[Change] = []
    for position, op in enumerate(node.ops):
        for new in _COMPARE_SWAPS.get(type(op), ()):

            def apply(target: ast.AST, position=position, new=new) -> None:
                target.ops[position] = new()  # type: ignore[attr-defined]

            changes.append((f"`{_SYMBOLS[type(op)]}` -> `{_SYMBOLS[new]}`", apply))
    return changes


def _constant_changes(node: ast.Constant) -> list[Change]:
    value = node.value
    if isinstance(value, bool):
        return [(f"{value} -> {not value}", _set("value", not value))]
    if isinstance(value, int):
        return [(f"{value} -> {moved}", _set("value", moved)) for moved in (value + 1, value - 1)]
    if isinstance(value, float):
        moved = value * 2 if value else 1.0
        return [(f"{value!r} -> {moved!r}", _set("value", moved))]
    return []


def _negate_test(node: ast.If | ast.While | ast.IfExp) -> Change:
    def apply(target: ast.AST) -> None:
        target.test = ast.UnaryOp(op=ast.Not(), operand=target.test)  # type: ignore[attr-defined]

    return ("condition negated", apply)


def changes_for(node: ast.AST) -> list[Change]:
    """Every way this one node can be mutated (empty: none)."""
    if isinstance(node, ast.Compare):
        return _compare_changes(node)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAPS:
        new = _BINOP_SWAPS[type(node.op)]
        return [(f"`{_SYMBOLS[type(node.op)]}` -> `{_SYMBOLS[new]}`", _set("op", new()))]
    if isinstance(node, ast.BoolOp):
        new = ast.Or if isinstance(node.op, ast.And) else ast.And
        return [(f"`{_SYMBOLS[type(node.op)]}` -> `{_SYMBOLS[new]}`", _set("op", new()))]
    if isinstance(node, ast.Constant):
        return _constant_changes(node)
    if isinstance(node, ast.If | ast.While | ast.IfExp):
        return [_negate_test(node)]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return [("`not` dropped", lambda _node: None)]  # replaced by its operand in `mutate`
    if isinstance(node, ast.Raise):
        return [("raise deleted", lambda _node: None)]  # replaced by `pass` in `mutate`
    if isinstance(node, ast.Continue):
        return [("continue -> break", lambda _node: None)]
    return []


def _is_log_call(node: ast.AST) -> bool:
    """`log.warning(...)` and the like: what they say is read by people, not by code."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _LOG_METHODS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in {"log", "logger", "logging"}
    )


def _skipped_ids(tree: ast.Module) -> set[int]:
    """ids of nodes (and their subtrees) whose mutation cannot change behaviour."""
    skip: set[int] = set()

    def skip_tree(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(child) for child in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
                skip_tree(first)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            skip_tree(node.returns)
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                skip_tree(arg.annotation if arg else None)
        if _is_log_call(node):
            skip_tree(node)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            skip_tree(node)
    return skip


def mutants(path: str, source: str) -> Iterator[Mutant]:
    tree = ast.parse(source)
    skip = _skipped_ids(tree)
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        for variant, (description, _apply) in enumerate(changes_for(node)):
            line = getattr(node, "lineno", 0)
            yield Mutant(path, index, variant, line, getattr(node, "end_lineno", None) or line, description)


class _Replacer(ast.NodeTransformer):
    def __init__(self, target: ast.AST, replacement: ast.AST) -> None:
        self.target = target
        self.replacement = replacement

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if node is self.target:
            return ast.copy_location(self.replacement, node)
        return super().generic_visit(node)


def mutate(source: str, mutant: Mutant) -> str:
    """The module's source with exactly this mutant applied."""
    tree = ast.parse(source)
    node = next(n for i, n in enumerate(ast.walk(tree)) if i == mutant.index)
    description, apply = changes_for(node)[mutant.variant]
    if description != mutant.description:
        raise RuntimeError(f"{mutant.label()}: source changed since the mutants were listed")
    if isinstance(node, ast.Raise):
        tree = _Replacer(node, ast.Pass()).visit(tree)
    elif isinstance(node, ast.Continue):
        tree = _Replacer(node, ast.Break()).visit(tree)
    elif isinstance(node, ast.UnaryOp):
        tree = _Replacer(node, node.operand).visit(tree)
    else:
        apply(node)
    return ast.unparse(ast.fix_missing_locations(copy.deepcopy(tree)))
