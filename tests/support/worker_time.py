"""Where a run's time goes: busy time per xdist worker and the slowest modules by phase.

Registered by tests/conftest.py. It reads the reports the controller receives (in a run
without xdist, the one process's), so it costs the tests nothing. At the end of the run it
prints, beside pytest's `--durations`:

- per worker: its busy time (setup + call + teardown of every test it ran), its span (first
  start to last stop) and the xdist groups it carried: the span of the longest is the run's
  critical path, and busy times far apart say the workers are unbalanced;
- the slowest modules with their setup, call and teardown sums (a module-scoped fixture's
  set-up lands on its first test's setup, a session fixture's on the first test that needs it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pytest

SLOWEST_MODULES = 15
PHASES = ("setup", "call", "teardown")


@dataclass
class WorkerTime:
    busy: float = 0.0
    start: float | None = None
    stop: float = 0.0
    groups: set[str] = field(default_factory=set)

    @property
    def span(self) -> float:
        return self.stop - self.start if self.start is not None else 0.0


def _no_phases() -> dict[str, float]:
    return dict.fromkeys(PHASES, 0.0)


@dataclass
class RunTimes:
    """Durations of a run's reports, by worker and by module."""

    workers: dict[str, WorkerTime] = field(default_factory=lambda: defaultdict(WorkerTime))
    modules: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(_no_phases))

    def add(self, report: pytest.TestReport) -> None:
        if report.when not in PHASES:
            return  # e.g. xdist's report of a test whose worker went down ("???")
        node = getattr(report, "node", None)  # xdist sets the worker that ran it
        worker = self.workers[node.gateway.id if node is not None else "main"]
        worker.busy += report.duration
        if report.start:
            worker.start = report.start if worker.start is None else min(worker.start, report.start)
            worker.stop = max(worker.stop, report.stop)
        module, _, rest = report.nodeid.partition("::")
        if "@" in rest:  # loadgroup's suffix: test@group
            worker.groups.add(rest.rsplit("@", 1)[1])
        self.modules[module][report.when] += report.duration

    def lines(self) -> list[str]:
        out = ["per worker: busy (setup+call+teardown), span (first start to last stop), groups"]
        for name, worker in sorted(self.workers.items()):
            groups = ", ".join(sorted(worker.groups)) or "-"
            out.append(f"  {name}: busy {worker.busy:7.1f} s  span {worker.span:7.1f} s  groups {groups}")
        busy = [worker.busy for worker in self.workers.values()]
        if len(busy) > 1:
            out.append(f"  total busy {sum(busy):.1f} s, most/least busy {max(busy):.1f}/{min(busy):.1f} s")
        ranked = sorted(self.modules.items(), key=lambda item: -sum(item[1].values()))[:SLOWEST_MODULES]
        out.append(f"slowest {len(ranked)} modules: total = setup + call + teardown")
        for module, phases in ranked:
            parts = " + ".join(f"{phases[phase]:.1f}" for phase in PHASES)
            out.append(f"  {sum(phases.values()):7.1f} s = {parts}  {module}")
        return out


class _Recorder:
    """One per run (a plugin object, not a module global: a run inside a test has its own)."""

    def __init__(self) -> None:
        self.times = RunTimes()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.times.add(report)

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        if not self.times.workers:
            return
        terminalreporter.write_sep("=", "where the time went")
        for line in self.times.lines():
            terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # an xdist worker's reports reach the controller, which prints
        config.pluginmanager.register(_Recorder(), "worker_time_recorder")
