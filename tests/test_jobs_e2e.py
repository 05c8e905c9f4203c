"""Batch jobs on the real local platform: the jobs component beside the hub and gateway,
real drivers, a real 2-worker Dask cluster through the gateway, the real usage database,
a real SMTP server (aiosmtpd), the SDK from a separate process that exits.

Scheduled slots with a test clock are tests/test_jobs_scheduler.py; here every run is
on demand or submitted, so nothing waits for a wall-clock minute.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import nbformat
import pytest

from tests.support.inbox import running_inbox
from tests.support.local_platform import REPO, HttpAnswer, LocalPlatform, local_platform

pytestmark = pytest.mark.slow

CONFIG = """\
apiVersion: graticule/v2
name: jobstest
target: local
hub:
  auth: {provider: local}
  default_profile: small
groups:
  ocean: {budget: team, profiles: [small], environments: [default]}
users:
  - {name: alice, email: alice@example.org, groups: [ocean]}
  - {name: bob, email: bob@example.org, groups: [ocean], budget: tiny}
budgets:
  team: {monthly_usd: 100, on_exhausted: block_new}
  tiny: {monthly_usd: 0.01, on_exhausted: block_new}
profiles:
  small: {cpu: 1, memory: 1GiB, price_per_hour_usd: 3.6}
dask:
  default_profile: small
  max_workers: 4
environments:
  default: {python: "3.11", packages: ["dask[distributed]==2026.8.0"]}
jobs:
  cluster-sum:
    owner: alice
    run: {script: cluster_sum.py, parameters: {count: 100}}
    cluster: {workers: 2}
    timeout: 10m
  report:
    owner: alice
    run: {notebook: report.ipynb, parameters: {days: 7}}
  flaky:
    owner: alice
    run: {script: flaky.py}
    retries: 1
    retry_backoff: 1s
    notify: [ops@example.org]
  bob-report:
    owner: bob
    run: {script: report.py}
  nightly:
    owner: alice
    run: {script: cluster_sum.py, parameters: {count: 100}}
    schedule: {cron: "0 3 1 1 *", timezone: Europe/Paris}
    cluster: {workers: 2}
"""

CLUSTER_SUM = """\
import sys
from distributed import get_client
count = int(sys.argv[1].split("=")[1])
client = get_client()  # the job's cluster, started by the driver
workers = len(client.scheduler_info()["workers"])
total = client.submit(sum, range(count)).result()
open("result.txt", "w").write(f"{workers} {total}")
print("workers", workers, "total", total)
"""


@pytest.fixture(scope="module")
def inbox():
    with running_inbox() as running:
        yield running


@pytest.fixture(scope="module")
def lp(tmp_path_factory, inbox) -> LocalPlatform:
    _, smtp = inbox
    settings = {"GRATICULE_SMTP_HOST": smtp.hostname, "GRATICULE_SMTP_PORT": str(smtp.port),
                "GRATICULE_JOBS_INTERVAL": "1"}
    with local_platform(CONFIG, tmp_path_factory.mktemp("jobs"), operator_env=settings) as handle:
        home = handle.state_dir / "users" / "alice"
        home.mkdir(parents=True, exist_ok=True)
        (home / "cluster_sum.py").write_text(CLUSTER_SUM)
        (home / "flaky.py").write_text("print('flaky attempt')\nraise SystemExit(1)\n")
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell("days = 1", metadata={"tags": ["parameters"]}),
                          nbformat.v4.new_code_cell("print('hours', days * 24)")]
        nbformat.write(notebook, home / "report.ipynb")
        yield handle


@pytest.fixture(scope="module")
def tokens(lp) -> dict[str, str]:
    return {user: lp.token(user) for user in ("alice", "bob")}


def api(lp: LocalPlatform, method: str, path: str, token: str, body: dict | None = None) -> HttpAnswer:
    """The gateway's jobs API as the SDK calls it (the `jupyterhub` auth scheme)."""
    request = urllib.request.Request(
        f"{lp.gateway_url}/api/graticule/v1/jobs{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"jupyterhub {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return HttpAnswer(response.status, json.loads(response.read() or b"null"))
    except urllib.error.HTTPError as exc:
        return HttpAnswer(exc.code, json.loads(exc.read() or b"null"))


def runs(lp: LocalPlatform) -> list[dict]:
    return json.loads(lp.platform("jobs", "list", "--json", "--file", str(lp.config_path),
                                  "--state", str(lp.state_dir)).stdout)


def wait_ended(lp: LocalPlatform, run_id: int, timeout: float = 300) -> dict:
    """Until the run has ended (the scheduler decides; this only watches the database)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = next(run for run in runs(lp) if run["id"] == run_id)
        if run["status"] in ("succeeded", "failed", "timed_out", "cancelled", "refused"):
            return run
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not end: {run}\n{lp.log_tail('jobs')}")


def queue(lp: LocalPlatform, name: str) -> int:
    out = lp.platform("jobs", "run", name, "--file", str(lp.config_path), "--state", str(lp.state_dir)).stdout
    return int(out.split()[2])


def test_the_jobs_component_runs_beside_the_hub(lp):
    components = {c["name"]: c for c in lp.status()["components"]}
    assert components["jobs"]["pid"] and components["jobs"].get("up", True)


def test_a_job_with_a_two_worker_cluster_runs_is_charged_and_leaves_no_cluster(lp, tokens):
    run_id = queue(lp, "cluster-sum")
    run = wait_ended(lp, run_id)
    assert run["status"] == "succeeded", lp.platform("jobs", "logs", str(run_id), "--file", str(lp.config_path),
                                                     "--state", str(lp.state_dir)).stdout
    assert (lp.state_dir / "users" / "alice" / "result.txt").read_text() == "2 4950"
    assert run["cost_usd"] > 0
    gateway = lp.gateway("alice", tokens["alice"])
    try:
        assert gateway.list_clusters() == []  # the driver shut its cluster down
    finally:
        gateway.close()
    usage = json.loads(lp.platform("usage", str(lp.config_path), "--state", str(lp.state_dir), "--json").stdout)
    team = next(b for b in usage["budgets"] if b["name"] == "team")
    alice = next(u for u in team["users"] if u["name"] == "alice")
    assert alice["spent_usd"] > 0  # the driver's and the cluster's time, under alice's budget


def test_a_notebook_job_keeps_its_executed_notebook(lp, tokens):
    answer = api(lp, "POST", "/declared/report/run", tokens["alice"])
    assert answer.status == 201, answer
    run = wait_ended(lp, answer.json()["id"])
    assert run["status"] == "succeeded" and run["result_name"] == "result.ipynb"
    result = api(lp, "GET", f"/{run['id']}/result", tokens["alice"]).json()
    executed = nbformat.reads(base64.b64decode(result["data"]).decode(), as_version=4)
    assert executed.cells[2].outputs[0]["text"] == "hours 168\n"


def test_a_failing_job_is_retried_then_its_people_are_mailed(lp, inbox):
    mail, _ = inbox
    run = wait_ended(lp, queue(lp, "flaky"))
    assert (run["status"], run["attempt"]) == ("failed", 2)
    deadline = time.monotonic() + 30
    while not any("flaky" in subject for subject in mail.subjects) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"[jobstest] job 'flaky' run {run['id']} failed after 2 attempt(s)" in mail.subjects


def test_a_job_whose_budget_cannot_pay_is_refused_and_its_owner_mailed(lp, inbox):
    mail, _ = inbox
    run = wait_ended(lp, queue(lp, "bob-report"))  # $0.01 cannot keep a $3.60/h driver for 10 min
    assert run["status"] == "refused" and "budget 'tiny' refused" in run["message"], run
    deadline = time.monotonic() + 30
    subject = f"[jobstest] job 'bob-report' run {run['id']} not started: budget"
    while subject not in mail.subjects and time.monotonic() < deadline:
        time.sleep(0.2)
    assert subject in mail.subjects


def test_a_submission_from_a_laptop_process_outlives_it(lp, tokens, tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("import os, sys\nprint('hello from', sys.argv[1:])\n"
                      "print('env', sorted(k for k in os.environ if k.startswith('GRATICULE_')))\n")
    laptop = {k: v for k, v in os.environ.items() if not k.startswith(("GRATICULE_", "JUPYTERHUB_"))}
    laptop |= {"GRATICULE_TOKEN": tokens["alice"], "GRATICULE_GATEWAY_URL": lp.gateway_url,
               "GRATICULE_CONFIG_DIR": str(tmp_path / "config"), "PYTHONPATH": str(REPO)}
    code = ("import graticule, sys; run = graticule.submit(sys.argv[1], parameters={'region': 'pacific'}); "
            "print(run['id'])")
    done = subprocess.run([sys.executable, "-c", code, str(script)], env=laptop, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run = wait_ended(lp, int(done.stdout.strip()))  # the laptop process has exited by now
    assert run["status"] == "succeeded" and run["kind"] == "submitted"
    logs = api(lp, "GET", f"/{run['id']}/logs", tokens["alice"]).json()["log"]
    assert "hello from ['--region=pacific']" in logs
    assert "'GRATICULE_TOKEN'" in logs  # the owner's token; none of the platform's own secrets
    assert "ADMIN_API_TOKEN" not in logs and "GATEWAY_API_TOKEN" not in logs


def test_bob_can_neither_see_nor_run_nor_cancel_alices_jobs_and_a_cancel_stops_the_cluster(lp, tokens):
    script = b"import time\nopen('long-started', 'w')\ntime.sleep(600)\n"
    long = api(lp, "POST", "", tokens["alice"], {
        "kind": "script", "name": "long", "filename": "long.py", "cluster": {"workers": 1},
        "payload": base64.b64encode(script).decode()})
    assert long.status == 201, long
    run_id = long.json()["id"]
    started = lp.state_dir / "users" / "alice" / "long-started"  # its cluster is up, it runs
    deadline = time.monotonic() + 300
    while not started.exists():
        assert time.monotonic() < deadline, lp.log_tail("jobs")
        time.sleep(0.5)
    assert all(run["owner"] == "bob" for run in api(lp, "GET", "", tokens["bob"]).json())
    for method, path in (("GET", f"/{run_id}"), ("GET", f"/{run_id}/logs"), ("POST", f"/{run_id}/cancel"),
                         ("POST", "/declared/cluster-sum/run")):
        assert api(lp, method, path, tokens["bob"]).status == 404, (method, path)
    assert api(lp, "POST", f"/{run_id}/cancel", tokens["alice"]).json()["cancel_requested"] is True
    assert wait_ended(lp, run_id)["status"] == "cancelled"
    gateway = lp.gateway("alice", tokens["alice"])
    try:
        assert gateway.list_clusters() == []  # a stopped driver shuts its cluster down too
    finally:
        gateway.close()


def test_a_submission_asking_for_a_profile_not_granted_is_refused(lp, tokens):
    answer = api(lp, "POST", "", tokens["bob"], {
        "kind": "script", "profile": "huge", "payload": base64.b64encode(b"pass\n").decode()})
    assert answer.status == 422 and "not granted" in answer.json()["error"]


def test_a_restart_of_the_scheduler_neither_loses_nor_doubles_a_running_run(lp, tokens):
    flag = lp.state_dir / "users" / "alice" / "go"
    waiter = f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.2)\nprint('went')\n"
    answer = api(lp, "POST", "", tokens["alice"], {
        "kind": "script", "name": "waiter", "filename": "waiter.py",
        "payload": base64.b64encode(waiter.encode()).decode()})
    run_id = answer.json()["id"]
    deadline = time.monotonic() + 120
    while next(r for r in runs(lp) if r["id"] == run_id)["status"] != "running":
        assert time.monotonic() < deadline, lp.log_tail("jobs")
        time.sleep(0.5)
    record = json.loads((lp.state_dir / "run" / "jobs.json").read_text())
    os.kill(record["pid"], 15)  # the scheduler stops while its driver runs
    lp.up()  # and comes back
    assert json.loads((lp.state_dir / "run" / "jobs.json").read_text())["pid"] != record["pid"]
    flag.write_text("")
    run = wait_ended(lp, run_id)
    assert (run["status"], run["attempt"]) == ("succeeded", 1)
    assert "went" in api(lp, "GET", f"/{run_id}/logs", tokens["alice"]).json()["log"]


def test_a_declared_schedule_runs_once_at_its_slot_across_a_restart(lp, tokens):
    """The `nightly` job (01-01 03:00 Paris) with the scheduler the component runs, built by
    the same function, on a test clock: the real database, hub, gateway and cluster."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from deploy.jobs.service import build_scheduler
    from deploy.ledger import ManualClock
    from deploy.runtime.addresses import load_runtime
    from deploy.runtime.components import JOBS

    record = json.loads((lp.state_dir / "run" / "jobs.json").read_text())
    os.kill(record["pid"], 15)  # the component stands aside: this test drives the clock
    deadline = time.monotonic() + 30
    while (lp.state_dir / "run" / "jobs.json").exists() and _alive(record["pid"]):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    slot = datetime(2027, 1, 1, 3, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
    clock = ManualClock(slot - 40)
    environ = JOBS.environment(load_runtime(lp.state_dir))
    before = build_scheduler(lp.state_dir, environ, clock)
    (lp.state_dir / "users" / "alice" / "result.txt").unlink(missing_ok=True)
    try:
        assert before.tick().created == []  # first look, 40 s before the slot
        clock.set(slot - 1)
        assert before.tick().created == []
    finally:
        before.ledger.close()
    clock.set(slot + 30)  # the hub was restarted across the slot
    after = build_scheduler(lp.state_dir, environ, clock)
    try:
        started = after.tick()
        assert started.created == started.started and len(started.started) == 1
        run_id = started.started[0]
        again = build_scheduler(lp.state_dir, environ, clock)  # and once more, within the minute
        clock.set(slot + 40)
        assert again.tick().created == []
        again.ledger.close()
        deadline = time.monotonic() + 300
        while next(r for r in runs(lp) if r["id"] == run_id)["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(1)
            after.tick()
        run = next(r for r in runs(lp) if r["id"] == run_id)
        assert (run["status"], run["kind"], run["slot"]) == ("succeeded", "scheduled", slot), run
        assert [r["slot"] for r in runs(lp) if r["job"] == "nightly"] == [slot]  # once
        assert (lp.state_dir / "users" / "alice" / "result.txt").read_text() == "2 4950"
    finally:
        after.ledger.close()
        lp.up()  # the component comes back
    assert {c["name"]: c["up"] for c in lp.status()["components"]}["jobs"] is True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
