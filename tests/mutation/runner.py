"""Run each mutant against the fast tests that reach it, in private copies of the repository.

The worktree is never edited: every worker owns a copy (in a temporary directory) and
writes one mutant at a time into it, runs the tests with `-x` and a timeout through its
fork server, then puts the original source back. A first, unmutated run must pass; it
also records which tests run which lines (tests/mutation/tracing.py), so each mutant
first meets the tests that execute its lines (a quick kill), then, if it survives
those, all of the module's tests. A mutant is killed when tests fail or time out; it
survives when every test passes.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.mutation.operators import Mutant, mutants, mutate
from tests.mutation.targets import Target

_IGNORED = shutil.ignore_patterns(
    ".git", "__pycache__", "build", ".platform", ".pytest_cache", ".ruff_cache", "*.egg-info", ".hypothesis"
)
IMPORT = "(import)"  # tests/mutation/tracing.py's name for lines run while importing


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    killed: bool
    detail: str  # the first failing test, "timeout", or why it survived


def copy_repository(repo: Path, into: Path) -> Path:
    destination = into / "repo"
    shutil.copytree(repo, destination, ignore=_IGNORED, symlinks=True)
    return destination


def _environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy)  # the copy's modules, not the editable install's
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant written in the same second must not reuse a stale .pyc
    env["PYTHONHASHSEED"] = "0"
    return env


def _pytest_args(target: Target, tests: list[str] | tuple[str, ...]) -> list[str]:
    args = ["-x", "-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts=", *tests]
    return [*args, "-k", target.select] if target.select else args


class ForkServer:
    """One `forkserver.py` per copy: pytest runs without paying for imports each time."""

    def __init__(self, copy: Path, timeout_s: float) -> None:
        script = copy / "tests" / "mutation" / "forkserver.py"
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(copy), str(timeout_s)],
            cwd=copy, env=_environment(copy), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def run(self, args: list[str], env: dict[str, str] | None = None) -> tuple[int | None, str]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps({"args": args, "env": env or {}}) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the fork server stopped (exit {self.process.wait()})")
        reply = json.loads(answer)
        return reply["code"], reply["detail"]

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Reach:
    """Which tests run which lines of the target's sources, from the unmutated run."""

    def __init__(self, trace: dict[str, dict[str, list[int]]], copy: Path) -> None:
        self.tests = [test for test in trace if test != IMPORT]  # in the order they ran
        self.lines: dict[tuple[str, int], set[str]] = {}
        for test, files in trace.items():
            for path, lines in files.items():
                relative = str(Path(path).relative_to(copy))
                for line in lines:
                    self.lines.setdefault((relative, line), set()).add(test)

    def tests_for(self, mutant: Mutant) -> list[str] | None:
        """Node ids of the tests that run the mutant's lines; every test for import-time
        lines; None when no test runs them."""
        reached: set[str] = set()
        for line in range(mutant.line, mutant.end_line + 1):
            reached |= self.lines.get((mutant.path, line), set())
        if IMPORT in reached:
            return self.tests
        return [test for test in self.tests if test in reached] or None


def baseline(copy: Path, server: ForkServer, target: Target) -> Reach:
    """The unmutated tests pass in the copy, import the copy's modules, and say what they reach."""
    module = target.sources[0].removesuffix(".py").replace("/", ".")
    probe = subprocess.run(
        [sys.executable, "-c", f"import {module} as m; print(m.__file__)"],
        cwd=copy, env=_environment(copy), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if not probe.stdout.strip().startswith(str(copy)):
        raise SystemExit(f"imports do not resolve to the copy {copy}: {probe.stdout.strip()} {probe.stderr.strip()}")
    trace_file = copy / ".mutation-trace.json"
    env = {
        "MUTATION_TRACE_FILES": os.pathsep.join(str(copy / source) for source in target.sources),
        "MUTATION_TRACE_OUT": str(trace_file),
    }
    code, detail = server.run(["-p", "tests.mutation.tracing", *_pytest_args(target, target.tests)], env)
    if code != 0:
        raise SystemExit(f"{target.name}: the tests fail before any mutation ({detail}); fix them first")
    return Reach(json.loads(trace_file.read_text()), copy)


def run_target(
    repo: Path, target: Target, workers: int, timeout_s: float, report: Callable[[Outcome], None]
) -> list[Outcome]:
    originals = {source: (repo / source).read_text() for source in target.sources}
    todo: queue.Queue[Mutant] = queue.Queue()
    for source, text in originals.items():
        for mutant in mutants(source, text):
            todo.put(mutant)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def judge(copy: Path, server: ForkServer, reach: Reach, mutant: Mutant) -> Outcome:
        # The tests that ran the line go first (a quick kill); a survivor of those must also
        # survive every test: a cached value or a subprocess can carry the mutant elsewhere.
        first = reach.tests_for(mutant)
        path = copy / mutant.path
        try:
            path.write_text(mutate(originals[mutant.path], mutant))
            for tests in ([first] if first else []) + [list(target.tests)]:
                code, detail = server.run(_pytest_args(target, tests))
                if code != 0:
                    return Outcome(mutant, True, detail)
        finally:
            path.write_text(originals[mutant.path])
        return Outcome(mutant, False, "every test passes" if first else "every test passes; none runs this line")

    def work(copy: Path, reach: Reach) -> None:
        server = ForkServer(copy, timeout_s)
        try:
            while True:
                try:
                    mutant = todo.get_nowait()
                except queue.Empty:
                    return
                outcome = judge(copy, server, reach, mutant)
                with lock:
                    outcomes.append(outcome)
                    report(outcome)
        except BaseException as exc:  # reported after the other workers finish
            with lock:
                failures.append(exc)
        finally:
            server.close()

    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        copies = [copy_repository(repo, Path(scratch) / str(n)) for n in range(workers)]
        first = ForkServer(copies[0], timeout_s)
        try:
            reach = baseline(copies[0], first, target)
        finally:
            first.close()
        threads = [threading.Thread(target=work, args=(copy, reach)) for copy in copies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    return sorted(outcomes, key=lambda o: (o.mutant.path, o.mutant.line, o.mutant.index, o.mutant.variant))
