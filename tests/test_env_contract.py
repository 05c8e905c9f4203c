"""One module owns the `GRATICULE_*` environment contract (deploy/runtime/env.py); the SDK
keeps its own copy of the names it reads (graticule/_env.py), which must equal the
contract's. No other source file, rendered-config template included, spells a name:
comments and docstrings may mention one, string literals may not; nor may the CI workflow
templates (the variable's name is passed in when they are rendered).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import deploy.runtime.env as contract
import graticule._env as sdk

ROOT = Path(__file__).resolve().parent.parent
OWNERS = {ROOT / "deploy" / "runtime" / "env.py", ROOT / "graticule" / "_env.py"}
# Runs on a worker machine with the standard library only (the `-c` program of its command):
# it cannot import the contract, so it may spell names, but only the contract's (checked below).
STANDALONE = {ROOT / "deploy" / "gateway" / "vm_worker_launcher.py", ROOT / "deploy" / "gateway" / "spot_notice.py"}
SEARCHED = ("deploy", "render", "modules", "graticule", "scripts")
NAME = re.compile(r"GRATICULE_[A-Z0-9_]+")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (prose, not code)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def spelled_names(source: str) -> list[tuple[int, str]]:
    """(line, name) of every GRATICULE_* name inside a string literal of `source`."""
    tree = ast.parse(source)
    prose = _docstrings(tree)
    return [
        (node.lineno, name)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
        for name in NAME.findall(node.value)
    ]


def _sources() -> list[Path]:
    return sorted(
        path
        for package in SEARCHED
        for pattern in ("*.py", "*.py.tmpl")
        for path in (ROOT / package).rglob(pattern)
        if "__pycache__" not in path.parts and path not in OWNERS | STANDALONE
    )


def test_the_sdk_reads_the_contracts_names():
    sdk_names = {key: value for key, value in vars(sdk).items() if key.isupper() and isinstance(value, str)}
    assert sdk_names, "graticule/_env.py names nothing"
    assert {key: getattr(contract, key, None) for key in sdk_names} == sdk_names
    assert set(sdk.NAMES) == set(contract.SDK_NAMES) == set(sdk_names.values())


def test_every_contract_name_is_a_graticule_variable_named_once():
    names = [value for key, value in vars(contract).items() if key.isupper() and isinstance(value, str)]
    assert len(names) == len(set(names)), "one name under two constants"
    assert all(NAME.fullmatch(name) or name == contract.PROXY_AUTH_TOKEN for name in names)


def test_no_graticule_name_is_spelled_outside_the_contract_modules():
    spelled = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in _sources()
        for line, name in spelled_names(path.read_text())
    ]
    assert _sources(), "nothing searched"
    assert spelled == []


def test_no_graticule_name_is_spelled_in_the_workflow_templates():
    templates = sorted((ROOT / "deploy" / "gitops" / "workflow_templates").glob("*.yaml"))
    assert templates, "no workflow templates found"
    spelled = [f"{path.name}: {name}" for path in templates for name in NAME.findall(path.read_text())]
    assert spelled == []


def test_the_finder_finds_a_literal_but_not_prose():
    source = '"""Reads GRATICULE_HUB_URL."""\n# GRATICULE_TOKEN\nimport os\nos.environ[f"GRATICULE_{1}"]\n' \
             'def f():\n    """GRATICULE_STATE_DIR"""\n    return os.environ.get("GRATICULE_STATE_DIR")\n'
    assert spelled_names(source) == [(7, "GRATICULE_STATE_DIR")]
    assert spelled_names('x = f"set GRATICULE_DEBUG={1}"\n') == [(1, "GRATICULE_DEBUG")]


def test_the_standalone_programs_spell_only_the_contracts_names():
    names = {value for key, value in vars(contract).items() if key.isupper() and isinstance(value, str)}
    spelled = {name for path in STANDALONE for _, name in spelled_names(path.read_text())}
    assert spelled, "nothing spelled: the exemption is not needed"
    assert spelled <= names
