"""Package sync shows the gateway's build while it runs, through the real hub, gateway and
uv (offline, from the test's wheelhouse), to a laptop-like venv holding only the SDK.

Ordering, not timing: the laptop's environment pins `syncgate==1.0`, which the gateway
can only build from an sdist whose setup.py waits for a file this test creates. Until
the test creates it the build cannot end, so every line the laptop shows before then
arrived while the gateway was still building."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import subprocess
import tarfile
import textwrap
import threading
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from deploy.cli.main import main as platform_main
from tests.support import environments as support
from tests.support import wheelhouse
from tests.support.local_platform import local_platform
from tests.support.procs import kill_tree

pytestmark = pytest.mark.slow
SYNC_API = "/api/graticule/v1/environments/sync"
LINE_WAIT = 300  # a guard against a hang, not an expectation of speed


@pytest.fixture(scope="module")
def house(tmp_path_factory):
    with support.wheelhouse_in_use(tmp_path_factory.getbasetemp()) as wheels:
        yield wheels


@pytest.fixture(scope="module")
def lp(house, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("syncprogress")
    (workdir / "platform.yaml").write_text(support.PLATFORM_YAML)
    assert platform_main(["lock", str(workdir / "platform.yaml")]) == 0
    with local_platform(support.PLATFORM_YAML, workdir) as handle:
        yield handle


def _sdist(out_dir: Path, name: str, setup_py: str) -> Path:
    """`name` 1.0 as an sdist (only) whose setup.py is `setup_py`."""
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        "pyproject.toml": textwrap.dedent(f"""\
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "{name}"
            version = "1.0"
            [tool.setuptools]
            packages = ["{name}"]
        """),
        "setup.py": setup_py,
        f"{name}/__init__.py": "WHERE = 'built on the gateway'\n",
    }
    path = out_dir / f"{name}-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-1.0/{member}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _waits_for(release: Path) -> str:
    return textwrap.dedent(f"""\
        import os, sys, time
        from setuptools import setup

        deadline = time.monotonic() + 900  # never hang a broken test run for ever
        while not os.path.exists({str(release)!r}):
            if time.monotonic() > deadline:
                sys.exit("the test never released this build")
            time.sleep(0.05)
        setup()
    """)


def _laptop_venv(house, base: Path, work: Path, name: str) -> Path:
    """A venv with the SDK and `name` 1.0 installed from a wheel that only it sees (the
    gateway's wheelhouse holds the package's sdist)."""
    laptop_only = work / f"laptop-wheels-{name}"
    laptop_only.mkdir()
    project = wheelhouse.make_project(work / "projects", name, "1.0", "WHERE = 'laptop'")
    env = {**os.environ, **house.env}
    wheelhouse.build_wheel(project, laptop_only, env)
    venv = support.shared_venv(base, f"laptop-{name}", ("distributed", "dask-gateway"))
    subprocess.run(
        [wheelhouse.uv.binary(), "pip", "install", "--quiet", "--no-deps", "--python", str(venv / "bin" / "python"),
         "--find-links", str(laptop_only), f"{name}==1.0"], check=True, capture_output=True, env=env,
    )
    return venv


@pytest.fixture(scope="module")
def laptop(lp, house, tmp_path_factory):
    """A laptop venv whose syncgate the gateway must build from an sdist that waits for
    the release file."""
    work = tmp_path_factory.mktemp("laptop")
    release = work / "release-the-build"
    _sdist(house.path, "syncgate", _waits_for(release))
    return _laptop_venv(house, tmp_path_factory.getbasetemp(), work, "syncgate"), release


class _StderrLines:
    """A process's stderr, line by line as it comes: `until(predicate)` reads on until
    predicate() holds (LINE_WAIT at most for each line); `seen` is what was read."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self.reader.start()

    def _pump(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def until(self, predicate) -> None:
        while not predicate():
            line = self._lines.get(timeout=LINE_WAIT)
            assert line is not None, "the SDK ended early:\n" + "\n".join(self.seen)
            self.seen.append(line)


def _get(url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    """GET `url` (POST `body` when given) as the token's user: the status and the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"jupyterhub {token}",
                                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


SCRIPT = textwrap.dedent("""
    import sys
    import graticule
    from graticule.sync import capture

    print("KEY", capture().key, file=sys.stderr, flush=True)
    with graticule.Cluster(sync=True) as cluster:
        print("STARTED", cluster.name, file=sys.stderr, flush=True)
""")


def test_the_laptop_sees_the_build_while_it_runs_and_only_its_owner_reads_the_log(lp, laptop, house, tmp_path):
    venv, release = laptop
    alice, bob = lp.token("alice"), lp.token("bob")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GRATICULE_", "JUPYTERHUB_"))}
    env.update(house.env, CI="true", GRATICULE_TOKEN=alice, GRATICULE_GATEWAY_URL=lp.gateway_url,
               GRATICULE_GATEWAY_SCHEDULER_URL=lp.scheduler_address, GRATICULE_CONFIG_DIR=str(tmp_path / "conf"))
    proc = subprocess.Popen([str(venv / "bin" / "python"), "-c", SCRIPT], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = _StderrLines(proc)
    seen, until = stderr.seen, stderr.until
    try:
        # uv says it is building syncgate, then waits in its setup.py for the release.
        until(lambda: any("Building syncgate==1.0" in line for line in seen))
        key = next(line.split()[1] for line in seen if line.startswith("KEY "))
        before_release = list(seen)
        # The build's steps and uv's lines (venv, install) reached the laptop before it could end.
        assert any("Using CPython 3.11" in line for line in before_release), before_release
        for step in ("creating a Python 3.11 environment", "installing "):
            assert any(line.startswith("==> [") and step in line for line in before_release), before_release
        log_url = f"{lp.gateway_url}{SYNC_API}/{key}/log"
        status, page = _get(log_url, alice)
        assert status == 200 and page["state"] == "building", page
        assert any("Using CPython" in entry["text"] for entry in page["entries"])
        status, page = _get(log_url, bob)  # bob cannot read alice's build log...
        assert status == 404, page
        assert "Using CPython" not in json.dumps(page)
        status, _ = _get(f"{lp.gateway_url}{SYNC_API}/{key}", bob)  # ...nor see her environment
        assert status == 404
        release.touch()
        until(lambda: any(line.startswith("STARTED ") for line in seen))
        assert proc.wait(timeout=LINE_WAIT) == 0, "\n".join(seen)
    finally:
        release.touch()  # let the gateway's build end whatever happened here
        kill_tree(proc.pid)
        stderr.reader.join(timeout=30)
    after_release = seen[len(before_release):]
    # What needs the build to have ended came after the release.
    assert any("+ syncgate==1.0" in line for line in after_release), seen
    assert any("recording the installed versions" in line for line in after_release), seen
    assert any("environment ready in" in line for line in after_release), seen
    assert not any("\x1b" in line for line in seen)  # CI: plain lines, no escape codes
    assert not any("Activate with" in line for line in seen)
    status, page = _get(f"{lp.gateway_url}{SYNC_API}/{key}/log", alice)
    assert status == 200 and page["state"] == "built" and page["report"]["installed"]["syncgate"] == "1.0"


FAILING = textwrap.dedent("""
    import sys
    import graticule

    try:
        graticule.Cluster(sync=True)
    except graticule.SyncError as exc:
        print("SYNC-ERROR", exc, file=sys.stderr, flush=True)
        sys.exit(3)
""")


def test_a_build_that_fails_on_the_gateway_is_a_sync_error_after_its_log(lp, house, tmp_path_factory, tmp_path):
    work = tmp_path_factory.mktemp("laptop-broken")
    _sdist(house.path, "syncbroken", "raise SystemExit('syncbroken does not build on this machine')\n")
    venv = _laptop_venv(house, tmp_path_factory.getbasetemp(), work, "syncbroken")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GRATICULE_", "JUPYTERHUB_"))}
    env.update(house.env, CI="true", GRATICULE_TOKEN=lp.token("alice"), GRATICULE_GATEWAY_URL=lp.gateway_url,
               GRATICULE_GATEWAY_SCHEDULER_URL=lp.scheduler_address, GRATICULE_CONFIG_DIR=str(tmp_path / "conf"))
    done = subprocess.run([str(venv / "bin" / "python"), "-c", FAILING], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 3, done.stderr
    lines = done.stderr.splitlines()
    at = next(index for index, line in enumerate(lines) if line.startswith("SYNC-ERROR "))
    error = "\n".join(lines[at:])
    assert lines[at].startswith("SYNC-ERROR the gateway could not build this environment: uv could not build")
    assert "Failed to build `syncbroken==1.0`" in error, error
    # The log came first: the install step and uv's own account of the failure.
    shown = lines[:at]
    assert any(line.startswith("==> [") and "installing" in line for line in shown), shown
    assert any("syncbroken does not build on this machine" in line for line in shown), shown
    assert "Traceback" not in done.stderr
    # An SDK that does not ask for a background build gets the answer when the build ended.
    status, answer = _get(f"{lp.gateway_url}{SYNC_API}", lp.token("alice"),
                          {"key": "f" * 32, "python": "3.11", "requirements": ["syncbroken==1.0"], "critical": []})
    assert status == 422 and "Failed to build `syncbroken==1.0`" in answer["error"], answer


def _descendants(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process(pid).children(recursive=True)
    return []


def test_a_build_whose_uv_is_killed_is_started_again_once_by_the_sdk(lp, house, tmp_path_factory, tmp_path):
    """The gateway's uv stopped by SIGTERM (as a restarting gateway's unit stops it): the
    build fails as interrupted and the SDK starts it once more, which then succeeds."""
    work = tmp_path_factory.mktemp("laptop-again")
    release = work / "release-the-build"
    _sdist(house.path, "syncagain", _waits_for(release))
    venv = _laptop_venv(house, tmp_path_factory.getbasetemp(), work, "syncagain")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GRATICULE_", "JUPYTERHUB_"))}
    env.update(house.env, CI="true", GRATICULE_TOKEN=lp.token("alice"), GRATICULE_GATEWAY_URL=lp.gateway_url,
               GRATICULE_GATEWAY_SCHEDULER_URL=lp.scheduler_address, GRATICULE_CONFIG_DIR=str(tmp_path / "conf"))
    (gateway,) = [c["pid"] for c in lp.status()["components"] if c["name"] == "gateway"]
    proc = subprocess.Popen([str(venv / "bin" / "python"), "-c", SCRIPT], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = _StderrLines(proc)
    seen, until = stderr.seen, stderr.until
    building = lambda line: "Building syncagain==1.0" in line  # noqa: E731
    try:
        until(lambda: any(map(building, seen)))  # uv waits in syncagain's setup.py now
        below = _descendants(gateway)
        uvs = [p for p in below if p.name() == "uv"]
        assert uvs, [p.cmdline() for p in below]
        backends = [child for uv in uvs for child in _descendants(uv.pid)]
        for process in uvs:
            process.terminate()  # SIGTERM, by PID
        for process in backends:  # uv's build backend would wait for the release otherwise
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        until(lambda: any("building it again" in line for line in seen))
        again = len(seen)
        until(lambda: any(map(building, seen[again:])))  # the second build reached the same point
        release.touch()
        until(lambda: any(line.startswith("STARTED ") for line in seen))
        assert proc.wait(timeout=LINE_WAIT) == 0, "\n".join(seen)
    finally:
        release.touch()
        kill_tree(proc.pid)
    assert sum("interrupted" in line and "building it again" in line for line in seen) == 1
    assert "Traceback" not in "\n".join(seen)
