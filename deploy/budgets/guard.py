"""`Budgets`: the one object a gateway backend uses to enforce platform.yaml's budgets.

Seams for a backend (each call is short and runs in a thread from async code):
- `admit(Request)` before starting a scheduler or worker (raises BudgetExceeded);
- `check_scale(...)` before forwarding a scale-up, so the client sees the refusal;
- `stopped(cluster, process)` / `cluster_stopped(cluster)` when processes end;
- `metering_loop(live, stop)` as a background task: every interval, close what is gone,
  alert, and stop the clusters of exhausted `stop` budgets with a reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path

from deploy.budgets import admission, metering
from deploy.budgets.admission import Request
from deploy.budgets.alerts import Mailer
from deploy.budgets.policy import Policy
from deploy.ledger import Clock, Ledger, ProcessKey, system_clock
from render.schema import Platform

log = logging.getLogger("graticule.budgets")

LiveFn = Callable[[], Collection[ProcessKey] | Awaitable[Collection[ProcessKey]]]
StopFn = Callable[[str, str], Awaitable[None] | None]


class Budgets:
    def __init__(self, ledger: Ledger, policy: Policy, mailer: Mailer | None = None) -> None:
        self.ledger = ledger
        self.policy = policy
        self.mailer = mailer or Mailer(policy.alert_emails)

    @classmethod
    def open(
        cls,
        platform: Platform,
        url: str | None = None,
        state_dir: Path | None = None,
        clock: Clock = system_clock,
        min_window_s: float | None = None,
        meter_interval_s: float | None = None,
    ) -> Budgets:
        policy = Policy.from_platform(platform, min_window_s, meter_interval_s)
        return cls(Ledger.open(url, state_dir, clock), policy)

    def budget_of(self, user: str) -> str | None:
        return self.policy.payers.get(user)

    def admit(self, request: Request) -> int:
        return admission.admit(self.ledger, self.policy, request)

    def check_scale(self, user: str, cores_each: float, price_each: float, count: int) -> None:
        if count > 0:
            admission.check(self.ledger, self.policy, user, cores_each * count, price_each * count, count)

    def headroom(self, user: str, cores_each: float, price_each: float) -> int:
        return admission.headroom(self.ledger, self.policy, user, cores_each, price_each)

    def stopped(self, cluster: str, process: str, reason: str = "stopped") -> int:
        return self.ledger.close_process(cluster, process, reason)

    def cluster_stopped(self, cluster: str, reason: str = "stopped") -> int:
        return self.ledger.close_cluster(cluster, reason)

    def meter(self, live: Collection[ProcessKey], seen_at: float | None = None) -> metering.PassResult:
        return metering.run_pass(self.ledger, self.policy, self.mailer, live, seen_at)

    async def metering_loop(self, live: LiveFn, stop: StopFn, interval_s: float | None = None) -> None:
        """Run a metering pass now (crash recovery) and then every interval, until cancelled."""
        interval_s = interval_s or self.policy.meter_interval_s
        while True:
            try:
                seen_at = self.ledger.clock()
                keys = live()
                if asyncio.iscoroutine(keys) or isinstance(keys, Awaitable):
                    keys = await keys
                result = await asyncio.to_thread(self.meter, set(keys), seen_at)
                for cluster, reason in result.to_stop.items():
                    log.warning("stopping cluster %s: %s", cluster, reason)
                    outcome = stop(cluster, reason)
                    if asyncio.iscoroutine(outcome) or isinstance(outcome, Awaitable):
                        await outcome
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("metering pass failed; retrying next interval")
            await asyncio.sleep(interval_s)
