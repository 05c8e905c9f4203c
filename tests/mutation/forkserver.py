"""A pytest fork server for one copy of the repository: `python forkserver.py COPY`.

Run as a script (never as `tests.mutation...`), so none of the repository's packages is
imported here: it imports the heavy third-party libraries once, then for each request on
stdin ({"args": pytest arguments, "env": variables to set}) forks a child that runs pytest in COPY, where the
repository's modules, mutant included, are imported fresh. Answers one JSON line per
request: {"code": exit status or null on timeout, "detail": first failure line}.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import time

PRELOAD = (
    "pytest", "_pytest.config", "pydantic", "sqlalchemy", "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.postgresql", "sqlalchemy.orm", "alembic", "ruamel.yaml", "packaging.requirements",
    "aiosmtpd.controller", "jinja2", "hypothesis", "smtplib", "email.message", "asyncio", "difflib",
)  # fmt: skip


def preload() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    import _pytest.config

    _pytest.config.get_config().pluginmanager.load_setuptools_entrypoints("pytest11")


def run_child(copy: str, args: list[str], env: dict[str, str], output: str) -> None:
    """In the forked child: pytest in the copy, output to a file, then exit with its status."""
    try:
        os.environ.update(env)
        sys.dont_write_bytecode = True
        os.chdir(copy)
        sys.path.insert(0, copy)
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        import pytest

        code = int(pytest.main(args))
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # anything at all: the mutant broke the run
        code = 99
    os._exit(code)


def wait(pid: int, timeout_s: float) -> int | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.killpg(pid, signal.SIGKILL)  # the child and anything it started
    os.waitpid(pid, 0)
    return None


def first_failure(output: str) -> str:
    with open(output, errors="replace") as handle:
        lines = handle.read().splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return failed[0] if failed else (lines[-1] if lines else "")


def main(copy: str, timeout_s: float) -> None:
    sys.path[:] = [p for p in sys.path if not p.startswith(copy)]  # the script's own folder
    preload()
    output = os.path.join(copy, ".mutation-run.txt")
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)
            run_child(copy, request["args"], request.get("env", {}), output)
        with contextlib.suppress(OSError):  # also here: whichever runs first, the group exists before a kill
            os.setpgid(pid, pid)
        code = wait(pid, timeout_s)
        detail = "timeout" if code is None else first_failure(output)
        print(json.dumps({"code": code, "detail": detail}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
