"""Which fast tests judge which module. Edit here when a module moves.

Only fast tests: no hub, gateway, Terraform, PostgreSQL or browser, so one module's run
takes minutes. Test ids are pytest node ids; `-k` expressions keep the SQLite half of
tests that are parametrized over SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    sources: tuple[str, ...]
    tests: tuple[str, ...]
    select: str = ""  # a pytest -k expression, when only some of `tests` are fast


_VALIDATION_TESTS = (
    "tests/test_validation_edges.py",
    "tests/test_schema_bounds.py",
    "tests/test_validate_corpus.py",
    "tests/test_validate_cli.py",
    "tests/test_render_workers_cost.py",
)

TARGETS: dict[str, Target] = {
    "render/checks.py": Target("render/checks.py", ("render/checks.py",), _VALIDATION_TESTS),
    "render/schema.py": Target(
        "render/schema.py",
        ("render/schema.py",),
        (*_VALIDATION_TESTS, "tests/test_schema_json.py", "tests/test_render_defaults.py"),
    ),
    "render/cost.py": Target(
        "render/cost.py",
        ("render/cost.py",),
        ("tests/test_cost_edges.py", "tests/test_render_workers_cost.py"),
    ),
    # gateway.py is the dask-gateway seam: only the real gateway (slow e2e tests) exercises it.
    "deploy/budgets/": Target(
        "deploy/budgets/",
        (
            "deploy/budgets/admission.py",
            "deploy/budgets/alerts.py",
            "deploy/budgets/guard.py",
            "deploy/budgets/metering.py",
            "deploy/budgets/policy.py",
            "deploy/budgets/report.py",
        ),
        ("tests/test_budget_edges.py", "tests/test_budget_alerts.py", "tests/test_budgets.py"),
        select="not postgresql",
    ),
}


def resolve(names: list[str]) -> list[Target]:
    """Targets by name; a source file inside a target's folder picks just that file."""
    if not names:
        return list(TARGETS.values())
    chosen = []
    for name in names:
        if name in TARGETS:
            chosen.append(TARGETS[name])
            continue
        owner = next((t for t in TARGETS.values() if name in t.sources), None)
        if owner is None:
            raise SystemExit(f"unknown module {name!r}; known: {', '.join(TARGETS)}")
        chosen.append(Target(name, (name,), owner.tests, owner.select))
    return chosen
