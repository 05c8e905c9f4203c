"""Detached, supervised processes: start, record (pid file + metadata), find, stop.

A component runs in a session of its own (so it outlives `platform up` and the terminal)
and is recorded in `<state>/run/<name>.json` with its PID *and start time*: a recycled PID
is never mistaken for ours. Processes that a component starts in sessions of their own
(notebook servers, Dask schedulers and workers) are not part of the component's session,
which is how restarting the hub or the gateway leaves them running.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from deploy.runtime import env
from deploy.runtime.liveness import is_alive, live_process
from deploy.runtime.spawn import detached
from deploy.runtime.state import private_dir, write_private

MARKER = env.STATE_DIR  # every process of a platform carries its state dir in its environment


@dataclass
class Record:
    name: str
    pid: int
    started: float  # psutil create_time
    cmd: list[str]
    fingerprint: str
    address: str = ""
    extra: dict = field(default_factory=dict)


def record_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.json"


def load_record(run_dir: Path, name: str) -> Record | None:
    path = record_path(run_dir, name)
    try:
        return Record(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def save_record(run_dir: Path, record: Record) -> None:
    write_private(record_path(run_dir, record.name), json.dumps(asdict(record), indent=2) + "\n")
    write_private(run_dir / f"{record.name}.pid", f"{record.pid}\n")


def forget(run_dir: Path, name: str) -> None:
    record_path(run_dir, name).unlink(missing_ok=True)
    (run_dir / f"{name}.pid").unlink(missing_ok=True)


def process_of(record: Record | None) -> psutil.Process | None:
    """The live process a record names, or None (gone, zombie, or a recycled PID)."""
    return None if record is None else live_process(record.pid, record.started)


def start(
    name: str, cmd: list[str], env: dict[str, str], cwd: Path, log: Path, fingerprint: str, address: str
) -> Record:
    """Start `cmd` detached (own session, stdin closed, output appended to `log`)."""
    private_dir(log.parent)
    banner = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # the log is private from the start
    try:
        os.write(banner, f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
    finally:
        os.close(banner)
    proc = detached(cmd, env, cwd=cwd, log=log)
    started = psutil.Process(proc.pid).create_time()
    # Nobody waits on this Popen: mark it done so Python does not warn when the object dies.
    proc.returncode = 0
    return Record(name, proc.pid, started, cmd, fingerprint, address)


def _terminate(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """SIGTERM, wait up to `timeout`, then SIGKILL; returns what still runs (zombies count as gone)."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    alive = _wait_gone(procs, timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return _wait_gone(alive, 5)


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    alive = [proc for proc in procs if is_alive(proc)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        psutil.wait_procs(alive, timeout=0)  # reaps those that are our own children
        alive = [proc for proc in alive if is_alive(proc)]
    return alive


def session_members(proc: psutil.Process) -> list[psutil.Process]:
    """`proc`'s descendants that are still in its session (not detached on purpose)."""
    try:
        session = os.getsid(proc.pid)
        children = proc.children(recursive=True)
    except (psutil.Error, ProcessLookupError):
        return []
    members = []
    for child in children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getsid(child.pid) == session:
                members.append(child)
    return members


def stop_component(record: Record | None, timeout: float = 20.0) -> list[psutil.Process]:
    """Stop a component and the helpers in its session; spare what it detached.

    Returns what could not be stopped (normally empty).
    """
    proc = process_of(record)
    if proc is None:
        return []
    helpers = session_members(proc)
    survivors = _terminate([proc], timeout)
    # Helpers normally stop with their parent; whatever is left of the session goes now.
    survivors += _terminate([h for h in helpers if is_alive(h)], 5)
    return survivors


def stop_all(procs: list[psutil.Process], timeout: float = 10.0) -> list[psutil.Process]:
    """Stop processes and all their descendants, detached or not."""
    family: dict[int, psutil.Process] = {}
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            for member in [proc, *proc.children(recursive=True)]:
                family[member.pid] = member
    return _terminate(list(family.values()), timeout)


def marked(state_dir: Path) -> list[psutil.Process]:
    """Every live process started for this platform: its environment names `state_dir`."""
    me = os.getpid()
    mine = {me, *(p.pid for p in psutil.Process(me).parents())}
    wanted = str(state_dir)
    found = []
    for proc in psutil.process_iter(["pid", "uids"]):
        if proc.pid in mine:
            continue
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(MARKER) == wanted and is_alive(proc):
                found.append(proc)
    return found
