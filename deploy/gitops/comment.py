"""The pull-request comment: what merging this change will do, in Markdown.

Pure: two snapshots (base and head, see `snapshot.py`) in, one Markdown string out. The
hidden MARKER lets CI find and update its own comment instead of adding a new one on
every push (one sticky comment per pull request).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from deploy.gitops.changes import describe
from deploy.gitops.plan_summary import headline
from deploy.gitops.snapshot import Snapshot
from render.diffing import diff_builds

MARKER = "<!-- graticule:platform-pr -->"
_TITLES = {
    "people": "People",
    "groups": "Groups",
    "budgets": "Budgets",
    "profiles": "Hardware profiles",
    "environments": "Environments",
    "platform": "Platform settings",
}


def render_comment(base: Snapshot, head: Snapshot) -> str:
    name = head.platform.name if head.platform else "platform"
    target = head.platform.target if head.platform else "?"
    lines = [MARKER, f"## graticule: `{name}` (target {target})", ""]
    lines += _validation(head)
    if head.platform is not None:
        lines += _changes(base, head)
    lines += _plan(head)
    lines += _cost(base, head)
    lines += _files(base, head)
    return "\n".join(lines).rstrip() + "\n"


def _validation(head: Snapshot) -> list[str]:
    result = head.validation
    if result is None:
        return ["- Validation: not run", ""]
    if result.get("valid") and result.get("warnings"):
        lines = ["- :warning: **platform.yaml is valid, with warnings** (CI validates with `--strict`: fix them)", ""]
        return [*lines, *_issues(result["warnings"]), ""]
    if result.get("valid"):
        return ["- :white_check_mark: **platform.yaml is valid**", ""]
    lines = ["- :x: **platform.yaml is invalid**: fix these before merging", ""]
    return [*lines, *_issues(result.get("errors", [])), ""]


def _issues(issues: list[dict]) -> list[str]:
    return [
        f"  - `{issue.get('file')}:{issue.get('line')}:{issue.get('col')}`: `{issue.get('path')}`: "
        f"{'warning: ' if issue.get('severity') == 'warning' else ''}{issue.get('message')}"
        for issue in issues
    ]


def _changes(base: Snapshot, head: Snapshot) -> list[str]:
    assert head.platform is not None
    changes = describe(base.platform, head.platform)
    lines = ["### What changes", ""]
    if not changes:
        return [*lines, "Nothing in people, groups, budgets, profiles or environments.", ""]
    for section, sentences in changes.sections.items():
        if sentences:
            lines.append(f"**{_TITLES[section]}**")
            lines += [f"- {sentence}" for sentence in sentences]
            lines.append("")
    return lines


def _plan(head: Snapshot) -> list[str]:
    lines = ["### Plan", ""]
    if head.plan_error:
        quoted = "\n".join(f"    {line}" for line in head.plan_error.splitlines())
        return [*lines, ":x: **The plan failed**:", "", quoted, ""]
    plan = head.plan
    if plan is None:
        return [*lines, "Not planned (see the job log).", ""]
    lines.append(headline(plan))
    lines.append("")
    if plan.get("has_changes"):
        lines += [
            "| to add | to change | to destroy |",
            "|---:|---:|---:|",
            f"| {plan['add']} | {plan['change']} | {plan['destroy']} |",
            "",
        ]
    destroys = plan.get("destroys") or []
    if destroys:
        lines.append(":warning: **Destroyed by this change:**")
        replaced = {
            change["address"]
            for change in plan.get("changes", [])
            if {"create", "delete"} <= set(change["actions"])
        }
        for address in destroys:
            lines.append(f"- `{address}`" + (" (replaced)" if address in replaced else ""))
        lines.append("")
    return lines


def fixed_monthly_usd(cost: dict[str, Any] | None) -> float | None:
    """The fixed monthly cost in a build's cost.json (None when there is none)."""
    fixed = (cost or {}).get("fixed_monthly")
    total = fixed.get("total_usd") if isinstance(fixed, dict) else None
    return float(total) if isinstance(total, int | float) else None


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _cost(base: Snapshot, head: Snapshot) -> list[str]:
    before, after = fixed_monthly_usd(base.cost), fixed_monthly_usd(head.cost)
    if before is None and after is None:
        return []
    delta = (after or 0.0) - (before or 0.0)
    sign = "+" if delta >= 0 else "-"
    return [
        "### Fixed monthly cost",
        "",
        "| before | after | delta |",
        "|---:|---:|---:|",
        f"| {_money(before)} | {_money(after)} | {sign}${abs(delta):,.2f} |",
        "",
        "Fixed cost is what the platform costs with nobody working (hub, network, load balancer);"
        " Dask clusters are metered against budgets.",
        "",
    ]


def _files(base: Snapshot, head: Snapshot) -> list[str]:
    diff = diff_builds(base.files, head.files)
    if diff.empty:
        return ["### Rendered files", "", "No rendered file changes.", ""]
    rows = []
    for change in diff.files:
        detail = ""
        if change.resources:
            counts = Counter(resource.action for resource in change.resources)
            detail = " (" + ", ".join(f"{counts[a]} {a}" for a in ("added", "changed", "removed") if counts[a]) + ")"
        rows.append(f"- {change.action} `{change.path}`{detail}")
    return [
        f"<details><summary>Rendered files changed: {len(rows)}</summary>",
        "",
        *rows,
        "",
        "</details>",
        "",
    ]
