"""A Terraform plan, summarized for people: counts, and every destroy by address.

Input is `terraform show -json PLANFILE`; output is the plan summary JSON that
`platform plan --json` prints and the pull-request comment reads. A replacement counts
as one add and one destroy, as Terraform's own "Plan: X to add, Y to change, Z to destroy".
"""

from __future__ import annotations

from typing import Any


def summarize(plan: dict[str, Any], target: str) -> dict[str, Any]:
    add = change = destroy = 0
    changes: list[dict[str, Any]] = []
    destroys: list[str] = []
    for entry in plan.get("resource_changes") or []:
        if entry.get("mode") == "data":
            continue
        actions = list(entry.get("change", {}).get("actions", []))
        if actions in (["no-op"], ["read"]):
            continue
        address = entry["address"]
        if "create" in actions:
            add += 1
        if "update" in actions:
            change += 1
        if "delete" in actions:
            destroy += 1
            destroys.append(address)
        changes.append({"address": address, "actions": actions})
    drift = [
        entry["address"]
        for entry in plan.get("resource_drift") or []
        if entry.get("change", {}).get("actions") not in (["no-op"], None)
    ]
    return {
        "target": target,
        "add": add,
        "change": change,
        "destroy": destroy,
        "has_changes": bool(changes),
        "changes": changes,
        "destroys": destroys,
        "drift": drift,
    }


def empty(target: str, note: str) -> dict[str, Any]:
    """The summary for a target with nothing to plan (local)."""
    return {**summarize({}, target), "note": note}


def headline(summary: dict[str, Any]) -> str:
    if summary.get("note"):
        return str(summary["note"])
    if not summary.get("has_changes"):
        return "No changes."
    return f"Plan: {summary['add']} to add, {summary['change']} to change, {summary['destroy']} to destroy."
