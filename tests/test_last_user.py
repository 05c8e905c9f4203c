"""A session platform torn down right after its last test (tests/support/last_user.py), on a
small tree of test modules run by real pytest processes with this suite's own conftest hooks:

- in one process: after the last test that uses it, before the tests after that;
- under xdist: right after its chain on the chain's worker, before that worker's other tests;
- what the destroy raises fails the last test's teardown;
- a run stopped early (`-x`) still destroys it, once.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.inner_pytest import RECORDING, run_tree

pytestmark = pytest.mark.slow  # each test runs pytest processes

CONFTEST = RECORDING + '''
from tests.support.last_user import until_last_user


@contextlib.contextmanager
def booted():
    record("boot")
    yield "booted"
    record("destroy")
    assert not os.environ.get("DESTROY_FAILS"), "something was left"


@pytest.fixture(scope="session")
def demo_platform(request):
    yield from until_last_user(request, "demo_platform", booted())
'''


def _module(name: str, count: int, fixture: str = "") -> str:
    return "from conftest import record\n\n\n" + "\n\n".join(
        f"def test_{n}({fixture}):\n    record('{name}::{n}')\n" for n in range(count))


MODULES = {
    "test_a_platform.py": _module("a", 2, "demo_platform"),
    "test_b_plain.py": _module("b", 3),
    "test_c_platform.py": _module("c", 1, "demo_platform"),
    "test_d_plain.py": _module("d", 6),
}


def _run(root: Path, *args: str, modules: dict[str, str] = MODULES, **env: str,
         ) -> tuple[subprocess.CompletedProcess, list[tuple[str, str]]]:
    return run_tree(root, CONFTEST, modules, *args, **env)


def test_in_one_process_it_goes_after_its_last_test(tmp_path):
    result, ran = _run(tmp_path, "-p", "no:xdist")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [what for what, _ in ran] == ["boot", "a::0", "a::1", "b::0", "b::1", "b::2", "c::0", "destroy",
                                         *(f"d::{n}" for n in range(6))]


def test_under_xdist_it_goes_after_its_chain_before_the_workers_other_tests(tmp_path):
    result, ran = _run(tmp_path, "-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder")
    assert result.returncode == 0, result.stdout + result.stderr
    (chain,) = {worker for what, worker in ran if what in ("a::0", "c::0")}
    there = [what for what, worker in ran if worker == chain]
    assert there[:there.index("destroy") + 1] == ["boot", "a::0", "a::1", "c::0", "destroy"]
    assert [what for what, _ in ran].count("destroy") == 1


def test_what_the_destroy_raises_fails_the_last_tests_teardown(tmp_path):
    result, ran = _run(tmp_path, "-p", "no:xdist", DESTROY_FAILS="1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ERROR test_c_platform.py::test_0 - AssertionError: something was left" in result.stdout
    assert [what for what, _ in ran].count("destroy") == 1
    assert [what for what, _ in ran][-6:] == [f"d::{n}" for n in range(6)]  # the others still run


def test_a_run_stopped_early_destroys_it_once(tmp_path):
    failing = {**MODULES, "test_a_platform.py": MODULES["test_a_platform.py"] + "\n\ndef test_fails():\n    assert 0\n"}
    result, ran = _run(tmp_path, "-p", "no:xdist", "-x", modules=failing)
    assert result.returncode == 1, result.stdout + result.stderr
    assert [what for what, _ in ran] == ["boot", "a::0", "a::1", "destroy"]
