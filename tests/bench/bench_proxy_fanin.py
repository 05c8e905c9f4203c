"""Proxy fan-in benchmark: 200 concurrent long polls through the hub's proxy, as a
200-worker cluster's booting machines send them (one `?wait=` poll of the gateway's
machines API each), against a backend that holds each for HOLD_SECONDS.

Baseline, measured in the same run: configurable-http-proxy as upstream runs it, with
tornado's default AsyncHTTPClient (max_clients 10). Then the platform's proxy
(`deploy.local.http_proxy`). Prints completed, failed, p50/p99 latency of the completed
and the proxy's peak resident memory; then the platform's proxy with 1,000 polls.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
from pathlib import Path

import psutil

from tests.support.hub_proxy import UPSTREAM_PROXY, HoldingBackend, concurrent_gets, running_proxy

POLLS = 200
HOLD_SECONDS = 5.0  # machines' real polls hold up to 20 s: shorter keeps the run short, same queueing
CLIENT_TIMEOUT = 60.0  # past the queue's 20 s and the hold


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _peak_rss_mib(pid: int, stop: threading.Event, peak: list[float]) -> None:
    process = psutil.Process(pid)
    while not stop.wait(0.1):
        peak[0] = max(peak[0], process.memory_info().rss / 2**20)


def _run(label: str, polls: int, command: list[str] | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as state, \
            HoldingBackend(release_at=polls + 1, most_seconds=HOLD_SECONDS) as backend, \
            running_proxy(Path(state), backend.port, command=command) as proxy:
        stop, peak = threading.Event(), [0.0]
        watcher = threading.Thread(target=_peak_rss_mib, args=(proxy.pid, stop, peak))
        watcher.start()
        try:
            answers = concurrent_gets(f"{proxy.url}/hold", polls, timeout=CLIENT_TIMEOUT)
        finally:
            stop.set()
            watcher.join()
    done = [a.seconds for a in answers if a.status == 200]
    failed = len(answers) - len(done)
    p50 = statistics.median(done) if done else float("nan")
    p99 = _percentile(done, 0.99) if done else float("nan")
    codes = sorted({a.status for a in answers if a.status != 200})
    print(f"[{label}] {polls} polls: completed {len(done)}, failed {failed} {codes or ''}; "
          f"p50 {p50:.2f} s, p99 {p99:.2f} s; backend peak in flight {backend.peak}; "
          f"proxy peak RSS {peak[0]:.0f} MiB", flush=True)
    return {"completed": len(done), "p50": p50, "p99": p99}


def main() -> None:
    print(f"each poll held {HOLD_SECONDS:.0f} s by the backend", flush=True)
    base = _run("baseline: upstream proxy, max_clients 10", POLLS, UPSTREAM_PROXY)
    ours = _run("platform proxy", POLLS, None)
    print(f"completed: {ours['completed']:.0f} vs {base['completed']:.0f} "
          f"({ours['completed'] / max(base['completed'], 1):.1f}x baseline); "
          f"p99 {ours['p99']:.2f} s vs {base['p99']:.2f} s ({ours['p99'] / base['p99']:.2f}x)", flush=True)
    _run("platform proxy", 1000, None)


if __name__ == "__main__":
    main()
