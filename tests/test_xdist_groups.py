"""The suite on pytest-xdist's workers (tests/support/xdist_groups.py, xdist_workers.py):
a small tree of test modules run by real pytest processes with this suite's own conftest
hooks, as scripts/test.sh runs them (`-n 2 --dist loadgroup --no-loadscope-reorder`).

- every test of a module that uses a `*_platform` session fixture runs on the worker that
  boots that platform, and that chain starts first there; two platforms, two workers; a
  module that boots the simulator itself is placed like any other;
- a module sharing a module-scoped fixture runs whole on one worker (the fixture is set up once);
- `--simulator-chains one` puts every simulator test on one worker, first (the old layout);
- `-m "not simulator"` leaves the simulator tests out; without xdist the marks still pass
  `--strict-markers`;
- SIGTERM to the controller: every worker tears its fixtures down and the run ends interrupted.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time

import psutil
import pytest
from xdist.workermanage import NodeManager

from tests.support.inner_pytest import RECORDING, environment, recorded, run_pytest, write_tree
from tests.support.procs import alive, kill_tree

pytestmark = pytest.mark.slow  # each test runs pytest processes (two xdist workers)

XDIST = ("-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder")

CONFTEST = RECORDING + '''


@pytest.fixture(scope="session")
def demo_platform():
    record("demo_platform-up")
    yield "booted"


@pytest.fixture(scope="session")
def other_platform():
    record("other_platform-up")
    yield "booted"
'''

MODULES = {
    "test_machines.py": '''
from conftest import record
from tests.support.simulator import Simulator  # noqa: F401  (what marks a module as the simulator's)


def test_machine_a():
    record("machines::a")


def test_machine_b():
    record("machines::b")
''',
    "test_on_platform.py": '''
from conftest import record


def test_platform_a(demo_platform):
    record("on_platform::a")


def test_platform_b(demo_platform):
    record("on_platform::b")
''',
    "test_on_other_platform.py": '''
from conftest import record


def test_other_a(other_platform):
    record("on_other::a")


def test_other_b(other_platform):
    record("on_other::b")
''',
    "test_b_shared.py": '''
import pytest

from conftest import record


@pytest.fixture(scope="module")
def server():
    record("server-up")
    yield "server"


def test_shared_a(server):
    record("shared::a")


def test_shared_b(server):
    record("shared::b")


def test_shared_c():
    record("shared::c")
''',
    "test_a_plain.py": "import pytest\n\nfrom conftest import record\n\n" + "\n".join(
        f"def test_plain_{n}():\n    record('plain::{n}')\n\n" for n in range(7))
    + "\n@pytest.mark.slow\ndef test_plain_7():\n    record('plain::7')\n",
}


def test_each_platforms_modules_share_its_worker_and_start_it(tmp_path):
    root = write_tree(tmp_path, CONFTEST, MODULES)
    result = run_pytest(root, *XDIST)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = recorded(root)
    assert len([what for what, _ in ran if "::" in what]) == 17
    workers = {what: worker for what, worker in ran}
    (demo,) = {workers[f"on_platform::{x}"] for x in "ab"}
    (other,) = {workers[f"on_other::{x}"] for x in "ab"}
    assert {demo, other} == {"gw0", "gw1"}  # one chain per worker, at once
    assert [what for what, _ in ran].count("demo_platform-up") == 1
    assert [what for what, _ in ran].count("other_platform-up") == 1
    # Collected last (by name), started first.
    assert next(what for what, worker in ran if worker == demo and "::" in what) == "on_platform::a"
    assert next(what for what, worker in ran if worker == other and "::" in what) == "on_other::a"
    # A slow single test is handed out before the quick ones (collected before it).
    there = [what for what, worker in ran if worker == workers["plain::7"]]
    assert not any(what.startswith("plain::") for what in there[:there.index("plain::7")])
    shared = {workers[f"shared::{x}"] for x in "abc"}
    assert len(shared) == 1  # the whole module, even the test that does not use the fixture
    assert [what for what, _ in ran].count("server-up") == 1


def test_not_simulator_leaves_the_group_out_and_no_xdist_still_runs(tmp_path):
    root = write_tree(tmp_path, CONFTEST, MODULES)
    result = run_pytest(root, *XDIST, "-m", "not simulator")
    assert result.returncode == 0, result.stdout + result.stderr
    names = {what for what, _ in recorded(root)}
    assert not any(name.startswith(("machines::", "on_platform::", "on_other::")) for name in names)
    assert {"shared::a", "plain::7"} <= names
    (root / "ran.txt").unlink()
    result = run_pytest(root, "-p", "no:xdist")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {worker for _, worker in recorded(root)} == {"main"}
    assert len([what for what, _ in recorded(root)]) == 17 + 3  # the tests, the platforms and the server



def test_one_chain_puts_every_simulator_test_on_one_worker_first(tmp_path):
    root = write_tree(tmp_path, CONFTEST, MODULES)
    result = run_pytest(root, *XDIST, "--simulator-chains", "one")
    assert result.returncode == 0, result.stdout + result.stderr
    ran = recorded(root)
    chain = {f"{module}::{x}" for module in ("machines", "on_platform", "on_other") for x in "ab"}
    (worker,) = {worker for what, worker in ran if what in chain}
    assert {what for what, w in ran if w == worker and "::" in what} >= chain
    assert set([what for what, w in ran if w == worker and "::" in what][:len(chain)]) == chain

HOLDING = '''
import os
import time
from pathlib import Path

import pytest

from conftest import record

HERE = Path(__file__).parent
LONGER_THAN_XDIST_WAITS = {teardown}


@pytest.fixture(scope="module")
def resource():
    yield
    time.sleep(LONGER_THAN_XDIST_WAITS)  # as destroying a booted platform does
    record("torn-down")


@pytest.mark.parametrize("n", [0, 1])
def test_holds_until_stopped(resource, n):
    (HERE / f"pid-{os.environ['PYTEST_XDIST_WORKER']}").write_text(str(os.getpid()))
    for _ in range(1200):  # until the signal; the test that runs this bounds it anyway
        time.sleep(0.1)
'''


def test_sigterm_to_the_controller_tears_every_worker_down(tmp_path):
    # xdist kills its workers EXIT_TIMEOUT seconds after the controller stops: a teardown that
    # takes longer is cut short unless the controller waits for the workers (xdist_workers.py).
    holding = HOLDING.replace("{teardown}", str(NodeManager.EXIT_TIMEOUT + 5))
    root = write_tree(tmp_path, CONFTEST, {"test_hold_a.py": holding, "test_hold_b.py": holding})
    controller = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *XDIST],
        cwd=root, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while len(list(root.glob("pid-gw*"))) < 2 and time.monotonic() < deadline and controller.poll() is None:
            time.sleep(0.2)
        workers = [int(path.read_text()) for path in root.glob("pid-gw*")]
        assert len(workers) == 2, "both workers should be holding a test"
        assert set(workers) <= {p.pid for p in psutil.Process(controller.pid).children()}
        controller.send_signal(signal.SIGTERM)
        output, _ = controller.communicate(timeout=120)
        assert controller.returncode == 2, output  # interrupted
        # Each worker the signal reached goes down once: the replacement xdist starts for it
        # is not taken for interrupted too (and replaced again, up to xdist's restart limit).
        assert output.count("node down: keyboard-interrupt") == 2, output
        assert [what for what, _ in recorded(root)].count("torn-down") == 2, output
        assert not any(alive(pid) for pid in workers)
    finally:
        for pid in (controller.pid, *workers):
            if alive(pid):
                kill_tree(pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            controller.wait(timeout=30)
