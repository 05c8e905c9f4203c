"""Where a run's driver runs.

`DriverHost` is the seam: the scheduler starts a driver, asks whether it has ended,
stops it, reads its log and result, and keeps only the JSON handle `start` returned (in
the run's row), so a restarted scheduler picks up drivers it did not start.

`LocalDriverHost` runs the driver as a detached process of the platform's runtime, as
notebook servers are: its own session (it outlives the scheduler and a hub restart),
marked with the state directory (so `platform down` stops it), output in the run's
directory. On the cloud targets (issues 14/15) a host would launch a VM of the driver's
profile through the machines layer (deploy/cloud) with the same files as user data and
ship the log and result back; the scheduler does not change.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from deploy.runtime.liveness import live_process
from deploy.runtime.spawn import detached
from deploy.runtime.state import private_dir, write_private
from render.job_spec import RunSpec

DRIVER = Path(__file__).with_name("driver.py")  # run by path: the job's environment needs only graticule
LOG, STATUS, SPEC, PAYLOAD = "driver.log", "status.json", "spec.json", "payload"


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    error: str  # empty on success
    result_name: str | None = None


class DriverHost(Protocol):
    def start(self, run_id: int, attempt: int, spec: RunSpec, payload: bytes | None,
              environment: dict[str, str], python: str) -> dict: ...

    def poll(self, handle: dict) -> Outcome | None: ...  # None while the driver runs

    def stop(self, handle: dict) -> None: ...

    def log(self, handle: dict, limit: int) -> str: ...

    def result(self, handle: dict, name: str) -> bytes | None: ...


class LocalDriverHost:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self._children: dict[int, subprocess.Popen] = {}  # reaped when they end

    def run_dir(self, run_id: int, attempt: int) -> Path:
        return self.state_dir / "jobs" / "runs" / str(run_id) / str(attempt)

    def home(self, owner: str) -> Path:
        return self.state_dir / "users" / owner  # the notebook server's working directory

    def start(self, run_id: int, attempt: int, spec: RunSpec, payload: bytes | None,
              environment: dict[str, str], python: str) -> dict:
        run_dir = private_dir(self.run_dir(run_id, attempt))
        home = private_dir(self.home(spec.owner))
        write_private(run_dir / SPEC, spec.to_json())
        if payload is not None:  # a submitted script or notebook keeps its own file name
            write_private(run_dir / (spec.path if spec.uploaded and spec.path else PAYLOAD), payload)
        proc = detached([python, str(DRIVER), str(run_dir)],
                        {**environment, "HOME": str(home), "PYTHONUNBUFFERED": "1"},  # its log as it happens
                        cwd=home, log=run_dir / LOG)
        self._children[proc.pid] = proc
        return {"pid": proc.pid, "started": psutil.Process(proc.pid).create_time(), "run_dir": str(run_dir)}

    def poll(self, handle: dict) -> Outcome | None:
        child = self._children.get(handle["pid"])
        if child is not None and child.poll() is None:
            return None
        if child is None and live_process(handle["pid"], handle["started"]) is not None:
            return None
        self._children.pop(handle["pid"], None)
        try:
            status = json.loads((Path(handle["run_dir"]) / STATUS).read_text())
        except (OSError, ValueError):
            code = child.returncode if child is not None else -1
            return Outcome(code if code else -1, "the driver ended without reporting (killed, or the platform stopped)")
        return Outcome(int(status["exit_code"]), str(status.get("error") or ""), status.get("result"))

    def stop(self, handle: dict) -> None:
        """SIGTERM the driver and what it started in its session, SIGKILL what is left after 10 s."""
        proc = live_process(handle["pid"], handle["started"])
        if proc is None:
            return
        family = [proc, *proc.children(recursive=True)]
        for member in family:
            with contextlib.suppress(psutil.Error):
                member.terminate()
        _, alive = psutil.wait_procs(family, timeout=10)
        for member in alive:
            with contextlib.suppress(psutil.Error):
                member.kill()
        psutil.wait_procs(alive, timeout=5)
        child = self._children.get(handle["pid"])
        if child is not None:  # ours: reap it
            child.wait(timeout=10)

    def log(self, handle: dict, limit: int) -> str:
        path = Path(handle["run_dir"]) / LOG
        try:
            with open(path, "rb") as handle_:
                size = handle_.seek(0, os.SEEK_END)
                handle_.seek(max(0, size - limit))
                return handle_.read().decode(errors="replace")
        except OSError:
            return ""

    def result(self, handle: dict, name: str) -> bytes | None:
        path = Path(handle["run_dir"]) / name
        try:
            return path.read_bytes()
        except OSError:
            return None
