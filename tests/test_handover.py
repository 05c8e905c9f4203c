"""A module fixture's state on a session platform, handed over from module to module
(tests/support/handover.py, as the tiny environments of tests/support/cloud_fixtures.py use
it), on a small tree of test modules run by real pytest processes with this suite's own
conftest hooks:

- under xdist (as scripts/test.sh runs the suite) the chain's modules that want the state run
  last, one after another: it is set up once and, nothing using the platform after them,
  never reverted;
- in one process, in collection order: handed over to the next module that wants it,
  reverted before a test that uses the platform as it was, set up again for a later one;
- a run stopped early (`-x`) closes what is handed over without reverting, before the platform goes;
- `--tiny-handover off` (the benchmark's baseline): each module sets it up and reverts it,
  in collection order.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.inner_pytest import RECORDING, run_tree

pytestmark = pytest.mark.slow  # each test runs pytest processes

CONFTEST = RECORDING + '''
from tests.support.handover import closing_unreverted, handed_over


@pytest.fixture(scope="session")
def demo_platform():
    state = {"text": "original"}
    yield state
    record(f"destroy-{state['text']}")


@pytest.fixture(scope="session")
def demo_held():
    held = {}
    yield held
    closing_unreverted(held)


class Applied:
    def __init__(self, platform, revert):
        self.platform, self.revert = platform, revert

    def __enter__(self):
        record("apply-tiny")
        self.platform["text"] = "tiny"
        return self.platform

    def __exit__(self, *exc):
        if self.revert():
            record("revert")
            self.platform["text"] = "original"
        else:
            record("left")


@pytest.fixture(scope="module")
def demo_tiny(request, demo_platform, demo_held):
    yield from handed_over(request, demo_held, "demo_tiny", "demo_platform",
                           lambda stack, revert: stack.enter_context(Applied(demo_platform, revert)))
'''


def _module(name: str, *uses: str) -> str:
    tests = [f"def test_{n}({fixture}):\n    record('{name}::{n}:' + {fixture}['text'])\n"
             for n, fixture in enumerate(uses)]
    return "from conftest import record\n\n\n" + "\n\n".join(tests)


MODULES = {
    "test_a_tiny.py": _module("a", "demo_platform", "demo_tiny"),
    "test_b_tiny.py": _module("b", "demo_tiny", "demo_tiny"),
    "test_c_plain.py": _module("c", "demo_platform"),
    "test_d_tiny.py": _module("d", "demo_tiny"),
    "test_e_other.py": "from conftest import record\n\n\n" + "\n\n".join(
        f"def test_{n}():\n    record('e::{n}:-')\n" for n in range(4)),
}


def _run(root: Path, *args: str, modules: dict[str, str] = MODULES, **env: str,
         ) -> tuple[subprocess.CompletedProcess, list[tuple[str, str]]]:
    return run_tree(root, CONFTEST, modules, *args, **env)


def test_under_xdist_the_chain_sets_it_up_once_and_never_reverts(tmp_path):
    result, ran = _run(tmp_path, "-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder")
    assert result.returncode == 0, result.stdout + result.stderr
    (chain,) = {worker for what, worker in ran if what.startswith(("a::", "b::", "c::", "d::"))}
    steps = [what for what, worker in ran if worker == chain and not what.startswith("e::")]
    assert steps == ["c::0:original", "a::0:original", "apply-tiny", "a::1:tiny", "b::0:tiny", "b::1:tiny",
                     "d::0:tiny", "left", "destroy-tiny"]


def test_in_one_process_it_is_handed_over_reverted_and_set_up_again(tmp_path):
    result, ran = _run(tmp_path, "-p", "no:xdist")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [what for what, _ in ran if not what.startswith("e::")] == [
        "a::0:original", "apply-tiny", "a::1:tiny", "b::0:tiny", "b::1:tiny", "revert", "c::0:original",
        "apply-tiny", "d::0:tiny", "left", "destroy-tiny"]


def test_a_run_stopped_early_leaves_it_unreverted_before_the_platform_goes(tmp_path):
    fails = "\n\ndef test_fails(demo_tiny):\n    assert False\n"
    failing = {**MODULES, "test_a_tiny.py": MODULES["test_a_tiny.py"] + fails}
    result, ran = _run(tmp_path, "-p", "no:xdist", "-x", modules=failing)
    assert result.returncode == 1, result.stdout + result.stderr
    assert [what for what, _ in ran] == ["a::0:original", "apply-tiny", "a::1:tiny", "left", "destroy-tiny"]


def test_off_every_module_sets_it_up_and_reverts_it_in_collection_order(tmp_path):
    result, ran = _run(tmp_path, "-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder", "--tiny-handover", "off")
    assert result.returncode == 0, result.stdout + result.stderr
    (chain,) = {worker for what, worker in ran if what.startswith(("a::", "b::", "c::", "d::"))}
    assert [what for what, worker in ran if worker == chain and not what.startswith("e::")] == [
        "a::0:original", "apply-tiny", "a::1:tiny", "revert", "apply-tiny", "b::0:tiny", "b::1:tiny", "revert",
        "c::0:original", "apply-tiny", "d::0:tiny", "revert", "destroy-original"]
