"""Job runs in the usage database, on SQLite and on a real PostgreSQL server: one run per
(job, slot) whoever races for it, one claimer per queued run, and a whole scheduler pass."""

from __future__ import annotations

import subprocess
import threading

import pytest
from sqlalchemy import func, inspect, select

from deploy.jobs import store
from deploy.ledger import Ledger, ManualClock
from deploy.ledger.models import JobRun
from tests.support.jobs import T0, every_minute, make_scheduler, spec, wait_drivers, write
from tests.support.ledger import ledger_url  # noqa: F401
from tests.support.postgres import postgres_server  # noqa: F401

pytestmark = pytest.mark.slow
SLOT = T0 + 30


def _race(target, count: int = 8) -> list:
    """Run `target(i)` in `count` threads at once; their answers."""
    answers: list = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = target(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_the_jobs_tables_come_with_the_ledgers_migrations(ledger_url):  # noqa: F811
    ledger = Ledger.open(ledger_url)
    try:
        assert {"job_runs", "job_cursors"} <= set(inspect(ledger.engine).get_table_names())
    finally:
        ledger.close()


def test_racing_schedulers_make_one_run_per_slot(ledger_url):  # noqa: F811
    ledgers = [Ledger.open(ledger_url) for _ in range(4)]
    run = spec("count", "count.py")

    def insert(index: int) -> int | None:
        ledger = ledgers[index % len(ledgers)]
        with ledger.writing() as conn:
            return store.insert_slot(ledger, conn, run, SLOT, store.QUEUED, T0)

    try:
        answers = _race(insert)
        assert len([answer for answer in answers if answer is not None]) == 1
        queued = [store.enqueue(ledgers[0], run, "manual", T0) for _ in range(2)]  # no slot: as many as asked
        with ledgers[0].reading() as conn:
            assert conn.execute(select(func.count()).select_from(JobRun)).scalar() == 3
        winners = _race(lambda index: store.claim(ledgers[index % len(ledgers)], queued[0], T0))
        assert winners.count(True) == 1  # one claimer starts a queued run
        assert [run.owner for run in store.runs(ledgers[0], owner="alice")] == ["alice"] * 3
        assert store.runs(ledgers[0], owner="bob") == []
    finally:
        for ledger in ledgers:
            ledger.close()


def test_a_scheduler_pass_on_the_database(tmp_path, ledger_url):  # noqa: F811
    state, clock = tmp_path / "state", ManualClock(T0)
    write(state / "users" / "alice", "count.py", "open('ran.txt', 'a').write('x')\n")
    jobs = {"count": every_minute(spec("count", "count.py"))}
    scheduler = make_scheduler(state, clock, jobs, url=ledger_url)
    try:
        scheduler.tick()
        clock.set(SLOT + 1)
        assert scheduler.tick().started == [1]
        again = make_scheduler(state, clock, jobs, url=ledger_url)  # a restart
        assert again.tick().created == []
        wait_drivers(again)
        again.tick()
        assert [(run.status, run.attempt) for run in store.runs(again.ledger)] == [("succeeded", 1)]
        again.ledger.close()
    finally:
        scheduler.ledger.close()


def test_a_job_from_a_git_repository_runs_at_its_ref(tmp_path):
    repository = tmp_path / "repo"
    repository.mkdir()
    git = ["git", "-C", str(repository), "-c", "user.email=t@example.org", "-c", "user.name=t"]
    (repository / "job.py").write_text("print('version one')\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(repository)], check=True)
    subprocess.run([*git, "add", "job.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    subprocess.run([*git, "branch", "stable"], check=True)
    (repository / "job.py").write_text("print('version two')\n")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    state, clock = tmp_path / "state", ManualClock(T0)
    scheduler = make_scheduler(state, clock, {})
    run = spec("repo", "job.py", repository=f"file://{repository}", ref="stable")
    store.enqueue(scheduler.ledger, run, "manual", clock())
    scheduler.tick()
    wait_drivers(scheduler)
    scheduler.tick()
    (row,) = store.runs(scheduler.ledger)
    assert row.status == "succeeded"
    assert "version one" in store.get(scheduler.ledger, row.id).log
    scheduler.ledger.close()
