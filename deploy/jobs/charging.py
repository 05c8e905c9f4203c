"""A run's cost, charged to its owner's budget in the usage ledger.

The driver's time is written as one closed interval per attempt (role `driver`, cluster
`job-RUN`), when the attempt ends: an open interval would be closed by the gateway's
metering pass, which only knows Dask processes. The job's Dask cluster is charged by the
gateway like any cluster of the owner's; `cluster_cost` reads it back for the run's total.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, insert, select

from deploy.budgets import admission
from deploy.budgets.policy import Policy
from deploy.ledger import Ledger
from deploy.ledger.models import UsageInterval

ROLE_DRIVER = "driver"


@dataclass(frozen=True)
class Size:
    cores: float
    memory_bytes: int
    price_per_hour_usd: float


def check_affordable(ledger: Ledger, policy: Policy, owner: str, driver: Size) -> None:
    """Raise BudgetExceeded when the owner's budget would refuse the driver now."""
    admission.check(ledger, policy, owner, driver.cores, driver.price_per_hour_usd)


def charge_driver(
    ledger: Ledger, policy: Policy, run_id: int, attempt: int, owner: str, profile: str, size: Size,
    started_at: float, ended_at: float,
) -> float:
    """Record one attempt's driver time; returns its cost in USD."""
    budget = policy.payers.get(owner)
    if budget is None:
        return 0.0
    ended_at = max(ended_at, started_at)
    with ledger.writing() as conn:
        conn.execute(insert(UsageInterval).values(
            user=owner, budget=budget, cluster=f"job-{run_id}", process=f"driver-{attempt}", profile=profile,
            role=ROLE_DRIVER, cores=size.cores, memory_bytes=size.memory_bytes,
            price_per_hour_usd=size.price_per_hour_usd, started_at=started_at, ended_at=ended_at,
            heartbeat_at=ended_at, end_reason="job attempt ended",
        ))
    return size.price_per_hour_usd * (ended_at - started_at) / 3600.0


def cluster_cost(ledger: Ledger, cluster: str, now: float) -> float:
    """What a Dask cluster has cost so far (open intervals up to `now`)."""
    end = func.coalesce(UsageInterval.ended_at, now)
    query = select(func.sum((end - UsageInterval.started_at) * UsageInterval.price_per_hour_usd / 3600.0))
    with ledger.reading() as conn:
        return float(conn.execute(query.where(UsageInterval.cluster == cluster)).scalar() or 0.0)
