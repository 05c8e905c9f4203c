"""Usage pages benchmark: what one page view reads from a ledger of 100 budgets and
100,000 intervals, on SQLite and PostgreSQL, against `platform usage`'s own report
(`usage_report`, the baseline) measured in the same run.

A page adds a daily-spend query per day of the month and the running clusters, so
expect a multiple of the baseline; the figures say how many.
"""

from __future__ import annotations

import statistics
import time

from deploy.budgets.report import usage_report
from deploy.hub.pages import views
from deploy.ledger import Ledger, ManualClock
from tests.bench.bench_ledger import NOW, _fill, _policy, on_sqlite_and_postgresql

SAMPLES = 15


def _median_ms(fn) -> float:
    times = []
    for _ in range(SAMPLES):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _run(label: str, url: str) -> None:
    ledger = Ledger.open(url, clock=ManualClock(NOW))
    policy = _policy()
    _fill(ledger)
    base = _median_ms(lambda: usage_report(ledger, policy))
    user = _median_ms(lambda: views.page_data(ledger, policy, "u7", False))
    admin = _median_ms(lambda: views.page_data(ledger, policy, "u0", True))
    print(f"[{label}] baseline usage_report (platform usage): p50 {base:.1f} ms")
    print(f"[{label}] user page data: p50 {user:.1f} ms ({user / base:.1f}x baseline)")
    print(f"[{label}] admin page data: p50 {admin:.1f} ms ({admin / base:.1f}x baseline)")
    ledger.close()


def main() -> None:
    on_sqlite_and_postgresql(_run)


if __name__ == "__main__":
    main()
