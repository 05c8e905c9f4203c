"""Run each mutant against its module's fast tests, in private copies of the repository.

The worktree is never edited: every worker thread owns a copy (in a temporary directory)
and writes one mutant at a time into it, runs the tests with `-x` and a timeout, then puts
the original source back. A mutant is killed when the tests fail (or time out), and
survives when they pass.
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


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    killed: bool
    detail: str  # the first failing test, or "timeout", or "" for a survivor


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


def _pytest_args(target: Target) -> list[str]:
    args = ["-x", "-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts=", *target.tests]
    return [*args, "-k", target.select] if target.select else args


class ForkServer:
    """One `forkserver.py` per copy: pytest runs without paying for imports each time."""

    def __init__(self, copy: Path, timeout_s: float) -> None:
        script = copy / "tests" / "mutation" / "forkserver.py"
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(copy), str(timeout_s)],
            cwd=copy, env=_environment(copy), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def run(self, args: list[str]) -> tuple[int | None, str]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(args) + "\n")
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


def _pytest(copy: Path, target: Target, timeout_s: float) -> tuple[int | None, str]:
    command = [sys.executable, "-m", "pytest", *_pytest_args(target)]
    try:
        done = subprocess.run(
            command, cwd=copy, env=_environment(copy), capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return None, "timeout"
    failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return done.returncode, failed[0] if failed else done.stdout.strip().splitlines()[-1:][0] if done.stdout else ""


def check_baseline(copy: Path, target: Target, timeout_s: float) -> None:
    """The unmutated tests must pass in the copy, and import the copy's modules."""
    module = target.sources[0].removesuffix(".py").replace("/", ".")
    probe = subprocess.run(
        [sys.executable, "-c", f"import {module} as m; print(m.__file__)"],
        cwd=copy, env=_environment(copy), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if not probe.stdout.strip().startswith(str(copy)):
        raise SystemExit(f"imports do not resolve to the copy {copy}: {probe.stdout.strip()} {probe.stderr.strip()}")
    code, detail = _pytest(copy, target, timeout_s)
    if code != 0:
        raise SystemExit(f"{target.name}: the tests fail before any mutation ({detail}); fix them first")


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

    def work(copy: Path) -> None:
        server = ForkServer(copy, timeout_s)
        try:
            work_with(copy, server)
        finally:
            server.close()

    def work_with(copy: Path, server: ForkServer) -> None:
        while True:
            try:
                mutant = todo.get_nowait()
            except queue.Empty:
                return
            path = copy / mutant.path
            try:
                path.write_text(mutate(originals[mutant.path], mutant))
                code, detail = server.run(_pytest_args(target))
            except BaseException as exc:  # reported after the other workers finish
                with lock:
                    failures.append(exc)
                return
            finally:
                path.write_text(originals[mutant.path])
            outcome = Outcome(mutant, code != 0, detail if code != 0 else "")
            with lock:
                outcomes.append(outcome)
                report(outcome)

    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        copies = [copy_repository(repo, Path(scratch) / str(n)) for n in range(workers)]
        check_baseline(copies[0], target, timeout_s)
        threads = [threading.Thread(target=work, args=(copy,)) for copy in copies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    return sorted(outcomes, key=lambda o: (o.mutant.path, o.mutant.line, o.mutant.index, o.mutant.variant))
