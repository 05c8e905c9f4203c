"""Batch runs on the platform: `submit` one that outlives this process, and follow it.

    run = graticule.submit("train.py", profile="small", cluster={"workers": 2}, parameters={"epochs": 3})
    graticule.jobs()                 # my runs, newest first
    graticule.job_logs(run["id"])    # its log so far
    graticule.job_result(run["id"])  # a notebook's executed .ipynb bytes, or a callable's return value

The run is queued on the platform and started by its scheduler, on the platform's
machines, charged to your budget: closing the laptop does not stop it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path

from graticule import http, settings
from graticule.errors import GraticuleError

API = "/api/graticule/v1/jobs"
ENDED = ("succeeded", "failed", "timed_out", "cancelled", "refused", "skipped")


def _call(method: str, path: str = "", body: dict | None = None) -> object:
    config = settings.resolve()
    return http.call(method, config.gateway_url + API + path, token=config.token, body=body)


def submit(
    what: str | Path | Callable,
    *args: object,
    name: str | None = None,
    profile: str | None = None,
    environment: str | None = None,
    cluster: dict | int | tuple[int, int] | None = None,
    parameters: dict | None = None,
    timeout_s: int = 3600,
    retries: int = 0,
    **kwargs: object,
) -> dict:
    """Run a script (`.py`), a notebook (`.ipynb`) or a callable (with `*args, **kwargs`)
    once on the platform. `cluster`: a dict (`profile`, `workers` or `adaptive`), a number
    of workers, or an adaptive range `(min, max)`; the run gets it as its default client
    (`client` and `cluster` in a notebook). Returns the queued run (`id`, `status`, ...)."""
    if callable(what):
        import cloudpickle  # comes with distributed

        payload = cloudpickle.dumps((what, args, kwargs))
        kind, filename = "callable", None
        name = name or getattr(what, "__name__", "callable")
    else:
        path = Path(what)
        if args or kwargs:
            raise TypeError("arguments go with a callable; give a script or notebook `parameters=`")
        payload = path.read_bytes()
        kind = "notebook" if path.suffix == ".ipynb" else "script"
        filename, name = path.name, name or path.stem
    body = {
        "name": name, "kind": kind, "filename": filename, "payload": base64.b64encode(payload).decode(),
        "profile": profile, "environment": environment, "cluster": _cluster(cluster),
        "parameters": parameters or {}, "timeout_s": timeout_s, "retries": retries,
    }
    return _call("POST", body=body)


def _cluster(cluster: dict | int | tuple[int, int] | None) -> dict | None:
    if cluster is None or isinstance(cluster, dict):
        return cluster
    if isinstance(cluster, int):
        return {"workers": cluster}
    minimum, maximum = cluster
    return {"adaptive": [minimum, maximum]}


def run_job(name: str) -> dict:
    """Start an on-demand run of a job declared in platform.yaml that you own."""
    return _call("POST", f"/declared/{name}/run")


def jobs() -> list[dict]:
    """My runs, newest first: id, job, kind, status, attempt, times, cost, message."""
    return _call("GET")


def job(run_id: int) -> dict:
    return _call("GET", f"/{int(run_id)}")


def job_logs(run_id: int) -> str:
    return _call("GET", f"/{int(run_id)}/logs")["log"]


def cancel_job(run_id: int) -> bool:
    """Stop a run of mine; False when it had already ended."""
    return _call("POST", f"/{int(run_id)}/cancel")["cancel_requested"]


def job_result(run_id: int) -> object:
    """A notebook run's executed notebook (bytes), or a callable's return value."""
    answer = _call("GET", f"/{int(run_id)}/result")
    data = base64.b64decode(answer["data"])
    if answer["name"].endswith(".pickle"):
        import cloudpickle

        return cloudpickle.loads(data)
    return data


def wait_job(run_id: int, timeout: float = 3600, poll: float = 2.0) -> dict:
    """Until the run has ended; the run. Raises GraticuleError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (run := job(run_id))["status"] not in ENDED:
        if time.monotonic() > deadline:
            raise GraticuleError(f"run {run_id} still {run['status']} after {timeout:g} s")
        time.sleep(poll)
    return run
