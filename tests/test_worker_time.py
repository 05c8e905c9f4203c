"""Where a run's time went (tests/support/worker_time.py): busy time and span per xdist
worker, the groups each carried, and the slowest modules by phase, from the reports the
controller receives; in a run without xdist, the one process as `main`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.worker_time import RunTimes

REPO = Path(__file__).resolve().parents[1]


def _report(nodeid: str, when: str, duration: float, start: float, worker: str | None = None) -> pytest.TestReport:
    report = pytest.TestReport(nodeid, ("x.py", 0, "x"), {}, "passed", None, when, duration=duration,
                               start=start, stop=start + duration)
    if worker is not None:
        report.node = SimpleNamespace(gateway=SimpleNamespace(id=worker))  # as xdist's controller sets it
    return report


def test_busy_time_span_and_groups_are_summed_per_worker_and_modules_per_phase():
    times = RunTimes()
    times.add(_report("tests/test_a.py::t1@simulator:aws_platform", "setup", 100.0, 1000.0, "gw0"))
    times.add(_report("tests/test_a.py::t1@simulator:aws_platform", "call", 20.0, 1100.0, "gw0"))
    times.add(_report("tests/test_b.py::t2@simulator:aws_platform", "teardown", 5.0, 1300.0, "gw0"))
    times.add(_report("tests/test_c.py::t3", "call", 2.0, 1000.0, "gw1"))
    gw0, gw1 = times.workers["gw0"], times.workers["gw1"]
    assert (gw0.busy, gw0.span, gw0.groups) == (125.0, 305.0, {"simulator:aws_platform"})
    assert (gw1.busy, gw1.span, gw1.groups) == (2.0, 2.0, set())
    assert times.modules["tests/test_a.py"] == {"setup": 100.0, "call": 20.0, "teardown": 0.0}
    lines = times.lines()
    assert any("gw0: busy   125.0 s  span   305.0 s  groups simulator:aws_platform" in line for line in lines)
    assert "  total busy 127.0 s, most/least busy 125.0/2.0 s" in lines
    modules = lines[lines.index("slowest 3 modules: total = setup + call + teardown") + 1:]
    assert modules[0].endswith("120.0 s = 100.0 + 20.0 + 0.0  tests/test_a.py")
    assert modules[-1].endswith("tests/test_c.py")


def test_without_xdist_one_process_is_main():
    times = RunTimes()
    times.add(_report("tests/test_a.py::t1", "call", 3.0, 50.0))
    assert list(times.workers) == ["main"]


def test_the_report_of_a_test_whose_worker_went_down_is_left_out():
    times = RunTimes()
    times.add(_report("tests/test_a.py::t1", "???", 0.0, 0.0, "gw0"))  # as xdist's handle_crashitem makes it
    assert not times.workers and not times.modules


@pytest.mark.slow  # runs pytest processes (two xdist workers)
@pytest.mark.parametrize("workers", [("-n", "2"), ("-p", "no:xdist")])
def test_a_run_ends_with_the_summary(tmp_path, workers):
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_configure, pytest_plugins  # noqa: F401\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: as this suite's\n")
    for name in ("one", "two", "three"):
        (tmp_path / f"test_{name}.py").write_text("def test_a():\n    pass\n\n\ndef test_b():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *workers],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout[result.stdout.index("where the time went"):]
    names = {"gw0", "gw1"} if workers[0] == "-n" else {"main"}
    assert {name for name in ("gw0", "gw1", "main") if f"  {name}: busy" in summary} == names
    assert all(f"test_{name}.py" in summary for name in ("one", "two", "three"))
