"""The jobs scheduler with a manual clock: slots on time, restarts, missed slots, retries,
timeouts, cancels, budgets and notices; real driver processes, real SQLite, real SMTP."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from deploy.jobs import store
from deploy.jobs.scheduler import HubUnavailable
from deploy.ledger import ManualClock, Process
from deploy.ledger.models import JobRun, UsageInterval
from tests.support.inbox import running_inbox
from tests.support.jobs import PRICE, T0, every_minute, hourly, make_scheduler, spec, wait_drivers, write
from tests.support.procs import free_port

SLOT = T0 + 30  # 12:01:00 UTC


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def state(tmp_path):
    return tmp_path / "state"


@pytest.fixture
def home(state):
    return state / "users" / "alice"


@pytest.fixture
def inbox(monkeypatch):
    with running_inbox() as (inbox, controller):
        monkeypatch.setenv("GRATICULE_SMTP_HOST", controller.hostname)
        monkeypatch.setenv("GRATICULE_SMTP_PORT", str(controller.port))
        yield inbox


def _rows(scheduler):
    with scheduler.ledger.reading() as conn:
        return conn.execute(select(JobRun.__table__).order_by(JobRun.id)).all()


def test_an_every_minute_job_runs_at_its_slot_once(state, home, clock):
    write(home, "count.py", "import sys\nopen('ran.txt', 'a').write(sys.argv[1] + '\\n')\nprint('counted')\n")
    jobs = {"count": every_minute(spec("count", "count.py", parameters={"region": "pacific"}))}
    scheduler = make_scheduler(state, clock, jobs)
    assert scheduler.tick().created == []  # first look: from now on, nothing before
    clock.set(SLOT - 1)
    assert scheduler.tick().created == []
    clock.set(SLOT + 2)
    started = scheduler.tick()
    assert started.created == started.started == [1]
    wait_drivers(scheduler)
    clock.set(SLOT + 12)
    assert scheduler.tick().ended == [1]
    (run,) = _rows(scheduler)
    assert (run.status, run.slot, run.attempt, run.exit_code) == ("succeeded", SLOT, 1, 0)
    assert (home / "ran.txt").read_text() == "--region=pacific\n"
    assert "counted" in run.log
    assert run.cost_usd == pytest.approx(0.10)  # 10 s of driver at $36/h
    with scheduler.ledger.reading() as conn:
        charged = conn.execute(select(UsageInterval.budget, UsageInterval.role, UsageInterval.user)).all()
    assert charged == [("team", "driver", "alice")]


def test_a_restarted_scheduler_never_runs_a_slot_twice(state, home, clock):
    # the driver runs until the test lets it go: the restart happens while it runs
    write(home, "count.py", "import os, time\nwhile not os.path.exists('go'): time.sleep(0.05)\n"
          "open('ran.txt', 'a').write('x')\n")
    jobs = {"count": every_minute(spec("count", "count.py"))}
    first = make_scheduler(state, clock, jobs)
    first.tick()
    clock.set(SLOT + 1)
    assert first.tick().started == [1]
    # the hub restarts within the same minute: a new scheduler on the same database
    second = make_scheduler(state, clock, jobs)
    clock.set(SLOT + 5)
    assert second.tick().created == []
    # and even a scheduler that lost its cursor cannot insert the slot again
    with second.ledger.writing() as conn:
        assert store.insert_slot(second.ledger, conn, jobs["count"].spec, SLOT, store.QUEUED, clock()) is None
    (home / "go").write_text("")
    wait_drivers(second)
    clock.set(SLOT + 20)
    assert second.tick().ended == [1]  # the new scheduler picks up the old one's driver
    assert [row.status for row in _rows(second)] == ["succeeded"]
    assert (home / "ran.txt").read_text() == "x"


@pytest.mark.parametrize(("missed", "runs", "skipped"), [("run_once", 1, 9), ("skip", 0, 10)])
def test_missed_slots_run_once_or_are_skipped(state, home, clock, missed, runs, skipped):
    write(home, "count.py", "pass\n")
    jobs = {"count": hourly(spec("count", "count.py"), missed=missed)}
    make_scheduler(state, clock, jobs).tick()
    clock.set(T0 + 10.5 * 3600)  # down from 12:00:30 to 22:30:30: ten slots, the last 30 min ago
    after = make_scheduler(state, clock, jobs)
    result = after.tick()
    rows = _rows(after)
    assert len(result.started) == runs
    assert [row.status for row in rows].count("skipped") == skipped
    if runs:
        ran = next(row for row in rows if row.status == "running")
        assert ran.slot == max(row.slot for row in rows)  # the newest missed slot
    wait_drivers(after)


def test_a_failing_job_is_retried_with_backoff_then_reported_by_mail(state, home, clock, inbox):
    write(home, "flaky.py", "print('about to fail')\nraise SystemExit(3)\n")
    run = spec("flaky", "flaky.py", retries=2, retry_backoff_s=60, notify=["alice@example.org"])
    scheduler = make_scheduler(state, clock, {})
    store.enqueue(scheduler.ledger, run, "manual", clock())
    assert scheduler.tick().started == [1]
    backoffs = []
    for attempt in (1, 2):
        wait_drivers(scheduler)
        assert scheduler.tick().retried == [1]
        (row,) = _rows(scheduler)
        assert row.status == "queued" and f"attempt {attempt} failed" in row.message
        backoffs.append(row.next_attempt_at - clock())
        clock.set(row.next_attempt_at - 1)
        assert scheduler.tick().started == []  # not before its backoff
        clock.set(row.next_attempt_at)
        assert scheduler.tick().started == [1]
    assert backoffs == [60, 120]
    wait_drivers(scheduler)
    assert scheduler.tick().ended == [1]
    (row,) = _rows(scheduler)
    assert (row.status, row.attempt, row.exit_code) == ("failed", 3, 3)
    assert inbox.subjects == ["[jobtest] job 'flaky' run 1 failed after 3 attempt(s)"]
    assert "about to fail" in inbox.bodies[0] and "exited with status 3" in inbox.bodies[0]


def test_a_job_whose_budget_is_exhausted_is_refused_and_its_owner_told(state, home, clock, inbox):
    write(home, "count.py", "open('ran.txt', 'w').write('x')\n")
    scheduler = make_scheduler(state, clock, {}, monthly_usd=1.0)
    spent = Process("alice", "team", "old", "old", "small", "scheduler", 1, 0, PRICE)
    with scheduler.ledger.writing() as conn:  # $1 spent: the whole budget
        interval = scheduler.ledger.open_interval(conn, spent, clock() - 100)
    scheduler.ledger.close_cluster("old", "done", at=clock())
    assert interval
    scheduler.owner_emails = {"alice": "alice@example.org"}  # a submission names no one: the owner is told
    run_id = store.enqueue(scheduler.ledger, spec("count", "count.py"), "submitted", clock())
    assert scheduler.tick().refused == [run_id]
    (row,) = _rows(scheduler)
    assert row.status == "refused" and "exhausted" in row.message and "budget 'team'" in row.message
    assert not (home / "ran.txt").exists()
    assert inbox.subjects == ["[jobtest] job 'count' run 1 not started: budget"]


def test_a_run_past_its_timeout_is_stopped(state, home, clock):
    write(home, "slow.py", "import time\nprint('sleeping', flush=True)\nopen('ready', 'w')\ntime.sleep(600)\n")
    scheduler = make_scheduler(state, clock, {})
    store.enqueue(scheduler.ledger, spec("slow", "slow.py", timeout_s=5), "manual", clock())
    assert scheduler.tick().started == [1]
    handle = json.loads(_rows(scheduler)[0].driver)
    deadline = time.monotonic() + 60
    while not (home / "ready").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    clock.advance(4)
    scheduler.tick()
    (row,) = _rows(scheduler)
    assert row.status == "running" and "sleeping" in row.log  # readable while it runs
    clock.advance(2)
    assert scheduler.tick().ended == [1]
    (row,) = _rows(scheduler)
    assert row.status == "timed_out" and "timed out after 5 s" in row.message
    assert scheduler.host.poll(handle) is not None  # the process is gone


def test_a_cancelled_run_is_stopped_and_not_retried(state, home, clock):
    write(home, "slow.py", "import time\ntime.sleep(600)\n")
    scheduler = make_scheduler(state, clock, {})
    store.enqueue(scheduler.ledger, spec("slow", "slow.py", retries=3), "manual", clock())
    queued = store.enqueue(scheduler.ledger, spec("later", "slow.py"), "manual", clock() + 60)
    store.change(scheduler.ledger, queued, next_attempt_at=clock() + 60)
    assert scheduler.tick().started == [1]
    assert store.request_cancel(scheduler.ledger, 1) and store.request_cancel(scheduler.ledger, queued)
    assert sorted(scheduler.tick().ended) == [1, queued]
    assert [row.status for row in _rows(scheduler)] == ["cancelled", "cancelled"]
    assert not store.request_cancel(scheduler.ledger, 1)  # over already


def test_a_notebook_run_keeps_the_executed_notebook(state, home, clock):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("days = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print('total', days * 24)"),
    ]
    home.mkdir(parents=True)
    nbformat.write(notebook, home / "report.ipynb")
    scheduler = make_scheduler(state, clock, {})
    store.enqueue(scheduler.ledger, spec("report", "report.ipynb", kind="notebook", parameters={"days": 7}),
                  "manual", clock())
    scheduler.tick()
    wait_drivers(scheduler, timeout=180)
    assert scheduler.tick().ended == [1]
    (row,) = _rows(scheduler)
    assert row.status == "succeeded", row.log
    executed = nbformat.reads(row.result.decode(), as_version=4)
    assert row.result_name == "result.ipynb"
    assert executed.cells[1].source == "days = 7"  # injected after the parameters cell
    assert executed.cells[2].outputs[0]["text"] == "total 168\n"


class RefusingHub:
    """Stands in for a hub that will not issue the owner a token (no hub runs in these
    tests; the real one is in tests/test_jobs_e2e.py)."""

    def issue(self, owner: str, lifetime_s: int) -> tuple[str, str]:
        raise RuntimeError(f"the hub refused a token for {owner!r}: HTTP 404")

    def revoke(self, owner: str, token_id: str) -> None:
        raise AssertionError("nothing was issued")


def test_a_run_that_cannot_start_is_a_failed_attempt(state, home, clock, inbox):
    write(home, "count.py", "pass\n")
    scheduler = make_scheduler(state, clock, {})
    scheduler.credentials = RefusingHub()
    store.enqueue(scheduler.ledger, spec("count", "count.py", retries=1, retry_backoff_s=10,
                                         notify=["alice@example.org"]), "manual", clock())
    assert scheduler.tick().retried == [1]
    clock.advance(10)
    assert scheduler.tick().ended == [1]
    (row,) = _rows(scheduler)
    assert (row.status, row.attempt) == ("failed", 2) and "could not start" in row.message
    assert inbox.subjects == ["[jobtest] job 'count' run 1 failed after 2 attempt(s)"]


class RestartingHub:
    """Stands in for a hub that is down for a while (its restart), then issues tokens."""

    def __init__(self) -> None:
        self.down = True

    def issue(self, owner: str, lifetime_s: int) -> tuple[str, str]:
        if self.down:
            raise HubUnavailable("connection refused")
        return "a-token", "a1"

    def revoke(self, owner: str, token_id: str) -> None:
        pass


def test_a_slot_that_comes_while_the_hub_restarts_starts_when_it_is_back(state, home, clock):
    write(home, "count.py", "open('ran.txt', 'a').write('x')\n")
    scheduler = make_scheduler(state, clock, {"count": every_minute(spec("count", "count.py"))})
    hub = scheduler.credentials = RestartingHub()
    scheduler.tick()
    clock.set(SLOT + 1)
    assert scheduler.tick().started == []
    (row,) = _rows(scheduler)
    assert (row.status, row.attempt) == ("queued", 0) and "waiting for the hub" in row.message
    hub.down = False
    clock.set(SLOT + 6)
    assert scheduler.tick().started == [1]  # no attempt spent, no second run for the slot
    wait_drivers(scheduler)
    scheduler.tick()
    assert [(row.status, row.attempt) for row in _rows(scheduler)] == [("succeeded", 1)]
    assert (home / "ran.txt").read_text() == "x"


def test_a_hub_that_does_not_answer_is_unavailable_not_a_refusal():
    from deploy.jobs.service import HubCredentials
    from deploy.runtime.hub_api import HubAPI

    nobody = HubCredentials(HubAPI(f"http://127.0.0.1:{free_port()}/hub/api", "no-token", timeout=5))
    with pytest.raises(HubUnavailable, match="does not answer"):
        nobody.issue("alice", 60)


def test_a_run_claimed_by_a_scheduler_that_stopped_is_started_by_the_next(state, home, clock):
    write(home, "count.py", "pass\n")
    scheduler = make_scheduler(state, clock, {})
    run_id = store.enqueue(scheduler.ledger, spec("count", "count.py"), "manual", clock())
    assert store.claim(scheduler.ledger, run_id, clock())  # ...and the scheduler died right there
    after = make_scheduler(state, clock, {})
    assert after.tick().started == []  # it may still be starting elsewhere
    clock.advance(121)
    assert after.tick().started == [run_id]  # given up on: queued again and started
    wait_drivers(after)
