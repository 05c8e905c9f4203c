"""One AWS Budgets budget per platform.yaml budget, over the cost of resources tagged with
it (the gateway tags every instance it launches with `budget`), alerting by email.

AWS only counts a tag once it is activated as a cost-allocation tag in the billing
console, which needs the tag to have appeared in billing data first; that one-time,
account-wide step is not managed here (it fails on a fresh account).
"""

from __future__ import annotations

from constructs import Construct

from modules.aws.base import ident, res
from modules.aws.spec import AwsSpec


class Budgets(Construct):
    def __init__(self, scope: Construct, spec: AwsSpec) -> None:
        super().__init__(scope, "budgets")
        for budget in spec.budgets:
            notifications = [
                {
                    "comparison_operator": "GREATER_THAN",
                    "notification_type": "ACTUAL",
                    "threshold": percent,
                    "threshold_type": "PERCENTAGE",
                    "subscriber_email_addresses": list(spec.alert_emails),
                }
                for percent in budget.alert_percents
            ] if spec.alert_emails else []
            res(self, "aws_budgets_budget", f"budget_{ident(budget.name)}", {
                "name": f"{spec.name}-{budget.name}",
                "budget_type": "COST",
                "limit_amount": f"{budget.monthly_usd:.2f}",
                "limit_unit": "USD",
                "time_unit": "MONTHLY",
                "cost_filter": [{"name": "TagKeyValue", "values": [f"user:budget${budget.name}"]}],
                "notification": notifications or None,
                "tags": {"Name": f"{spec.name}-{budget.name}", "budget": budget.name},
            })
