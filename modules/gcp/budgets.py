"""One billing budget per platform.yaml budget, alerting at its thresholds.

A budget counts what carries its `budget` label in this project: the gateway labels every
VM it launches with the launching user's budget, so each budget sees its users' compute.
The hub, NAT and load balancer belong to no user budget. Alerts go by email to
`integrations.alerts.email` (monitoring channels), and to the billing account's admins.
The graticule enforcer, not the cloud budget, stops clusters when a budget runs out.
"""

from __future__ import annotations

from collections.abc import Sequence

from constructs import Construct

from modules.gcp.base import ident, ref, res
from modules.gcp.spec import BudgetSpec, GcpSpec

DEFAULT_ALERT_PERCENTS = (100,)  # a budget without alerts still tells when it is spent


def amount(monthly_usd: float) -> dict[str, object]:
    units = int(monthly_usd)
    nanos = round((monthly_usd - units) * 1_000_000_000)
    money: dict[str, object] = {"currency_code": "USD", "units": str(units)}
    if nanos:
        money["nanos"] = nanos
    return {"specified_amount": money}


class Budgets(Construct):
    def __init__(self, scope: Construct, spec: GcpSpec, billing_account: str, project_number: str) -> None:
        super().__init__(scope, "budgets")
        channels = [
            ref(res(self, "google_monitoring_notification_channel", f"alert_email_{index}", {
                "display_name": f"graticule {spec.name}: {email}",
                "type": "email",
                "labels": {"email_address": email},  # the channel's settings, not resource labels
                "user_labels": spec.labels,  # default_labels does not reach these
            }), "id")
            for index, email in enumerate(spec.alert_emails)
        ]
        for budget in spec.budgets:
            self._budget(spec, budget, billing_account, project_number, channels)

    def _budget(self, spec: GcpSpec, budget: BudgetSpec, billing_account: str, project_number: str,
                channels: Sequence[str]) -> None:
        percents = budget.alert_percents or DEFAULT_ALERT_PERCENTS
        updates: dict[str, object] = {"disable_default_iam_recipients": False}
        if channels:
            updates["monitoring_notification_channels"] = list(channels)
        res(self, "google_billing_budget", ident(budget.name), {
            "billing_account": billing_account,
            "display_name": f"{spec.name}-{budget.name}",
            "budget_filter": {
                "projects": [f"projects/{project_number}"],
                "labels": {"budget": budget.name},
                "calendar_period": "MONTH",
                "credit_types_treatment": "INCLUDE_ALL_CREDITS",
            },
            "amount": amount(budget.monthly_usd),
            "threshold_rules": [
                {"threshold_percent": percent / 100, "spend_basis": "CURRENT_SPEND"} for percent in percents
            ],
            "all_updates_rule": updates,
        })
