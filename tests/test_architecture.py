"""The layout's arrows, checked on the source: which package may import which.

- `render` imports only `render` and `modules`; `modules` only `modules`; the SDK
  `graticule` only itself; nothing outside `deploy/cli/` imports `deploy.cli`;
- no import cycle between the packages (and top-level modules) of `deploy/`;
- only `deploy/gateway/` imports `dask_gateway_server`; only `deploy/cloud/` calls a
  cloud SDK at run time (boto3, google.cloud), and `deploy/vm/` boto3 (publishing, the hub VM);
- no source file over 400 lines: the product, its scripts, the rendered configs'
  templates and the tests.

Every import counts, including those inside functions: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("deploy", "render", "modules", "graticule")
MAX_LINES = 400


def _sources(package: str) -> list[Path]:
    return sorted(path for path in (ROOT / package).rglob("*.py") if "__pycache__" not in path.parts)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    here = _module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*here[: len(here) - node.level + 1], *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def _graph(package: str) -> dict[str, set[str]]:
    return {_module_name(path): _imports(path) for path in _sources(package)}


def _offenders(package: str, allowed: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for module, imported in _graph(package).items():
        for name in sorted(imported):
            top = name.split(".")[0]
            if name.startswith(forbidden) or (top in OURS and top not in allowed):
                bad.append(f"{module} imports {name}")
    return bad


def test_render_imports_only_render_and_modules():
    assert _offenders("render", ("render", "modules"), ()) == []


def test_modules_import_only_modules():
    assert _offenders("modules", ("modules",), ()) == []


def test_the_sdk_imports_only_itself():
    assert _offenders("graticule", ("graticule",), ()) == []


def test_library_code_never_imports_the_cli():
    bad = [
        f"{module} imports {name}"
        for module, imported in _graph("deploy").items()
        if not module.startswith("deploy.cli")
        for name in imported
        if name == "deploy.cli" or name.startswith("deploy.cli.")
    ]
    assert bad == []


def _unit(name: str) -> str | None:
    """The package of deploy/ (or top-level module) that `name` belongs to."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "deploy" and len(parts) > 1 else None


def _exists(unit: str) -> bool:
    where = ROOT / Path(*unit.split("."))
    return where.is_dir() or where.with_suffix(".py").exists()


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_the_packages_of_deploy():
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imported in _graph("deploy").items():
        source = _unit(module)
        for name in imported:
            target = _unit(name)
            if source and target and target != source and _exists(target):
                edges[source].add(target)
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


@pytest.mark.parametrize(
    ("library", "home"),
    [("dask_gateway_server", ("deploy.gateway",)), ("boto3", ("deploy.cloud", "deploy.vm")),
     ("google.cloud", ("deploy.cloud", "deploy.vm"))],
)
def test_a_third_party_runtime_is_imported_from_one_package_only(library, home):
    """boto3 and google.cloud also in deploy.vm: `platform apply`'s publishing to the
    artifacts bucket and the hub VM's own calls (S3 or Cloud Storage, Secrets Manager or
    Secret Manager) are not the machines layer."""
    bad = [
        f"{module} imports {name}"
        for package in OURS
        for module, imported in _graph(package).items()
        if not any(module == h or module.startswith(h + ".") for h in home)
        for name in imported
        if name == library or name.startswith(library + ".")
    ]
    assert bad == []


def test_no_source_file_is_over_400_lines():
    long = [
        f"{path.relative_to(ROOT)}: {lines}"
        for package in (*OURS, "scripts", "tests")
        for path in [*_sources(package), *sorted((ROOT / package).rglob("*.py.tmpl"))]
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert long == []
