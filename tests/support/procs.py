"""Process and network helpers shared by tests that start real servers."""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import psutil

# Tests pick their servers' ports as the platform does (below the ephemeral range).
from deploy.ports import free_port as free_port


def kill_tree(pid: int, timeout: float = 10.0) -> None:
    """Stop a process and all its descendants: SIGTERM, then SIGKILL after `timeout`."""
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    family = [*parent.children(recursive=True), parent]
    for proc in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=timeout)


def create_time_offset() -> float:
    """How far psutil's create_time() runs ahead of the wall clock (usually negative).

    On Linux it is derived from the boot time in /proc/stat, which has whole-second
    resolution, so it can be up to a second off; measure it on a child of our own.
    """
    before = time.time()
    child = subprocess.Popen(["sleep", "30"])
    try:
        return psutil.Process(child.pid).create_time() - before
    finally:
        child.kill()
        child.wait()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers (any HTTP status), the process dies, or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def started(args: list[str], **popen) -> Iterator[subprocess.Popen]:
    """Start a process for the duration of a `with` block; always stopped, children too."""
    proc = subprocess.Popen(args, **popen)
    try:
        yield proc
    finally:
        kill_tree(proc.pid)
