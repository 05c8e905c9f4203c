"""The driver of one job run: `python driver.py RUN_DIR`, in the job's environment.

Run by path, not as a module of the platform: it needs only the standard library and
`graticule` (the SDK every environment has), plus nbclient for notebooks and cloudpickle
for submitted callables. It reads RUN_DIR/spec.json, checks out the repository if the
job names one, starts the job's Dask cluster (the default client for the script; `client`
and `cluster` in a notebook), runs the script, notebook or callable with its parameters,
shuts the cluster down, and writes RUN_DIR/status.json: exit code, error, result file.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import subprocess
import sys
import traceback
from pathlib import Path

NOTEBOOK_RESULT, CALLABLE_RESULT = "result.ipynb", "result.pickle"


def main(run_dir: Path) -> int:
    # stopped (cancel, timeout): unwind, so that `finally` shuts the job's cluster down
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    spec = json.loads((run_dir / "spec.json").read_text())
    status: dict = {"exit_code": 1, "error": "", "result": None}
    cluster = None
    try:
        base = run_dir if spec.get("uploaded") else _checkout(spec, run_dir) if spec.get("repository") else Path.cwd()
        cluster = _cluster(spec, run_dir)
        kind = spec["kind"]
        if kind == "script":
            _script(base / spec["path"], spec["parameters"])
        elif kind == "notebook":
            status["result"] = NOTEBOOK_RESULT
            _notebook(base / spec["path"], spec["parameters"], cluster, run_dir / NOTEBOOK_RESULT)
        else:
            status["result"] = CALLABLE_RESULT
            _callable(run_dir / "payload", spec["parameters"], run_dir / CALLABLE_RESULT)
        status["exit_code"] = 0
    except SystemExit as exc:  # a script's sys.exit(code)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        status.update(exit_code=code, error="" if code == 0 else f"the job exited with status {code}")
    except BaseException as exc:  # the job's own error, reported and kept in the log
        traceback.print_exc()
        status["error"] = f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        if cluster is not None:
            try:
                cluster.shutdown()
            except Exception as exc:  # the gateway's idle timeout stops it anyway
                print(f"could not shut the job's cluster down: {exc}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        tmp = run_dir / "status.json.tmp"
        tmp.write_text(json.dumps(status))
        os.replace(tmp, run_dir / "status.json")
    return int(status["exit_code"])


def _checkout(spec: dict, run_dir: Path) -> Path:
    target = run_dir / "src"
    command = ["git", "clone", "--quiet", "--depth", "1"]
    if spec.get("ref"):
        command += ["--branch", spec["ref"]]
    subprocess.run([*command, spec["repository"], str(target)], check=True, stdin=subprocess.DEVNULL)
    return target


def _cluster(spec: dict, run_dir: Path):
    wanted = spec.get("cluster")
    if not wanted:
        return None
    import graticule

    adaptive = tuple(wanted["adaptive"]) if wanted.get("adaptive") else None
    cluster = graticule.Cluster(
        profile=wanted.get("profile"), environment=spec.get("environment"),
        n_workers=None if adaptive else wanted.get("workers"), adaptive=adaptive,
    )
    cluster.get_client()  # the default client of everything the job computes with Dask
    if wanted.get("workers") and not adaptive:
        cluster.get_client().wait_for_workers(wanted["workers"], timeout=600)
    (run_dir / "cluster.json").write_text(json.dumps({"name": cluster.name}))  # its cost joins the run's
    print(f"job cluster {cluster.name} started", flush=True)
    return cluster


def _script(path: Path, parameters: dict) -> None:
    sys.argv = [str(path), *(f"--{key}={value}" for key, value in parameters.items())]
    sys.path.insert(0, str(path.parent))
    runpy.run_path(str(path), run_name="__main__")


def _notebook(path: Path, parameters: dict, cluster, result: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    lines = [f"{key} = {value!r}" for key, value in parameters.items()]
    if cluster is not None:
        lines += ["import graticule", f"cluster = graticule.Cluster(name={cluster.name!r}, shutdown_on_close=False)",
                  "client = cluster.get_client()"]
    if lines:  # after the cell tagged `parameters` (papermill's convention), else first
        tagged = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
        cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["injected-parameters"]})
        notebook.cells.insert(tagged[0] + 1 if tagged else 0, cell)
    client = NotebookClient(notebook, timeout=None, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    finally:  # the executed notebook is the run's result, failed cells and all
        nbformat.write(notebook, result)


def _callable(payload: Path, parameters: dict, result: Path) -> None:
    import cloudpickle

    function, args, kwargs = cloudpickle.loads(payload.read_bytes())
    value = function(*args, **{**parameters, **kwargs})
    result.write_bytes(cloudpickle.dumps(value))
    print(f"returned {value!r}"[:2000], flush=True)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
