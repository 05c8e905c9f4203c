"""One pass of the jobs scheduler (`Scheduler.tick(now)`), safe to repeat and to restart.

Each pass, in this order:
1. declared jobs' slots that are due (`slots.due` from the job's cursor) become runs,
   one row per (job, slot) whoever inserts it; missed slots are run once or skipped;
2. runs in flight are watched: an ended driver is recorded (exit code, log, result,
   cost); a failed attempt is queued again after its backoff (doubled each time) until
   its retries are used up, and then its people are told; a run past its timeout or
   asked to cancel is stopped;
3. queued runs whose time has come are claimed (one claimer wins) and started, unless
   the owner's budget would refuse the driver: then the run is refused and the owner told.
All state is in the database and the driver's handle: a new Scheduler on the same
database carries on where a stopped one left off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Row

from deploy.budgets.admission import BudgetExceeded
from deploy.budgets.policy import Policy
from deploy.jobs import charging, notify, slots, store
from deploy.jobs.hosts import DriverHost, Outcome
from deploy.ledger import Ledger
from render.job_spec import DeclaredJob, RunSpec

log = logging.getLogger("graticule.jobs")
LOG_LIMIT = 1 << 20  # the last MiB of a driver's log is kept in the database
RESULT_LIMIT = 64 << 20


START_RETRY_S = 5.0  # a start that waits for the hub is tried again this soon
CLAIM_TIMEOUT_S = 120.0  # a run claimed but not started for this long: its scheduler stopped


class HubUnavailable(Exception):
    """The hub did not answer (restarting, say): the run waits, its attempt is not spent."""


class Credentials(Protocol):
    """Short-lived hub tokens of a job's owner, for the driver's Dask cluster; `issue`
    raises HubUnavailable when the hub cannot be reached."""

    def issue(self, owner: str, lifetime_s: int) -> tuple[str, str]: ...  # (token, token id)

    def revoke(self, owner: str, token_id: str) -> None: ...


@dataclass
class TickResult:
    created: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)


@dataclass
class Scheduler:
    ledger: Ledger
    policy: Policy
    jobs: Mapping[str, DeclaredJob]
    host: DriverHost
    sizes: Mapping[str, charging.Size]  # profile -> what its driver costs
    environment: Callable[[RunSpec, str | None], dict[str, str]]  # the driver's, given its token
    python_for: Callable[[str | None], str]  # environment name -> its Python
    credentials: Credentials | None = None
    owner_emails: Mapping[str, str] = field(default_factory=dict)  # the owner is told too
    on_time_s: float = slots.ON_TIME_S
    _log_sizes: dict[int, int] = field(default_factory=dict, repr=False)  # run -> log length stored

    def tick(self, now: float | None = None) -> TickResult:
        now = self.ledger.clock() if now is None else now
        result = TickResult()
        self._schedule(now, result)
        self._watch(now, result)
        self._start_due(now, result)
        return result

    # -- 1. slots ---------------------------------------------------------------------------

    def _schedule(self, now: float, result: TickResult) -> None:
        for name, job in sorted(self.jobs.items()):
            if job.schedule is None:
                continue
            with self.ledger.writing() as conn:
                decision = slots.due(job.schedule, store.cursor(conn, name), now, self.on_time_s)
                for slot in decision.skip:
                    store.insert_slot(self.ledger, conn, job.spec, slot, store.SKIPPED, now)
                for slot in decision.run:
                    run_id = store.insert_slot(self.ledger, conn, job.spec, slot, store.QUEUED, now)
                    if run_id is not None:
                        result.created.append(run_id)
                store.set_cursor(self.ledger, conn, name, decision.checked_through)

    # -- 2. runs in flight ------------------------------------------------------------------

    def _watch(self, now: float, result: TickResult) -> None:
        for row in store.queued_cancels(self.ledger):
            store.change(self.ledger, row.id, status=store.CANCELLED, ended_at=now,
                         message="cancelled before it started")
            result.ended.append(row.id)
        for row in store.in_flight(self.ledger):
            if row.driver is None:  # being started, or claimed by a scheduler that stopped before it could
                if now - (row.attempt_started_at or 0.0) > CLAIM_TIMEOUT_S:
                    store.change(self.ledger, row.id, status=store.QUEUED)
                continue
            handle = json.loads(row.driver)
            outcome = self.host.poll(handle)
            if outcome is None:
                stop_reason = self._stop_reason(row, now)
                if stop_reason is None:
                    self._keep_log(row.id, handle)
                    continue
                self.host.stop(handle)
                outcome = self.host.poll(handle) or Outcome(-15, "")
                outcome = Outcome(outcome.exit_code, stop_reason, outcome.result_name)
            self._ended(row, handle, outcome, now, result)

    def _keep_log(self, run_id: int, handle: dict) -> None:
        """A running driver's log into the database, when it has grown (users read it there)."""
        text = self.host.log(handle, LOG_LIMIT)
        if len(text) != self._log_sizes.get(run_id):
            store.change(self.ledger, run_id, log=text)
            self._log_sizes[run_id] = len(text)

    def _stop_reason(self, row: Row, now: float) -> str | None:
        if row.cancel_requested:
            return "cancelled"
        timeout = RunSpec.from_dict(json.loads(row.spec)).timeout_s
        if row.attempt_started_at is not None and now - row.attempt_started_at > timeout:
            return f"timed out after {timeout} s"
        return None

    def _ended(self, row: Row, handle: dict, outcome: Outcome, now: float, result: TickResult) -> None:
        spec = RunSpec.from_dict(json.loads(row.spec))
        if self.credentials is not None and handle.get("token_id"):
            try:
                self.credentials.revoke(spec.owner, handle["token_id"])
            except Exception as exc:  # it expires on its own
                log.warning("could not revoke the token of run %s: %s", row.id, exc)
        cost = charging.charge_driver(
            self.ledger, self.policy, row.id, row.attempt, spec.owner, spec.profile,
            self.sizes.get(spec.profile, charging.Size(0, 0, 0.0)), row.attempt_started_at or now, now,
        )
        cluster = self._cluster_of(handle)
        if cluster:
            cost += charging.cluster_cost(self.ledger, cluster, now)
        values: dict = {"cost_usd": row.cost_usd + cost, "log": self.host.log(handle, LOG_LIMIT),
                        "exit_code": outcome.exit_code, "driver": json.dumps(handle)}
        if outcome.result_name:
            data = self.host.result(handle, outcome.result_name)
            if data is not None and len(data) <= RESULT_LIMIT:
                values |= {"result_name": outcome.result_name, "result": data}
        cancelled = outcome.error == "cancelled"
        timed_out = outcome.error.startswith("timed out")
        if outcome.exit_code == 0 and not (cancelled or timed_out):
            store.change(self.ledger, row.id, status=store.SUCCEEDED, ended_at=now, message="", **values)
            result.ended.append(row.id)
            return
        message = outcome.error or f"exited with status {outcome.exit_code}"
        if cancelled:
            store.change(self.ledger, row.id, status=store.CANCELLED, ended_at=now, message=message, **values)
            result.ended.append(row.id)
            return
        self._attempt_failed(row, spec, row.attempt, store.TIMED_OUT if timed_out else store.FAILED, message, now,
                             result, values)

    def _attempt_failed(self, row: Row, spec: RunSpec, attempt: int, status: str, message: str, now: float,
                        result: TickResult, values: dict) -> None:
        """Queue the run again after its backoff, or, with its retries used up, end it and tell."""
        if attempt <= spec.retries:
            delay = spec.retry_backoff_s * 2 ** (attempt - 1)
            store.change(self.ledger, row.id, status=store.QUEUED, next_attempt_at=now + delay, attempt=attempt,
                         message=f"attempt {attempt} failed: {message}; retrying in {delay} s", **values)
            result.retried.append(row.id)
            return
        store.change(self.ledger, row.id, status=status, ended_at=now, message=message, attempt=attempt, **values)
        result.ended.append(row.id)
        notice = notify.failed(row.job, row.id, attempt, status, message, values.get("log", row.log))
        notify.send(self._recipients(spec), notice, self.policy.platform_name)

    def _recipients(self, spec: RunSpec) -> list[str]:
        return list(dict.fromkeys([*spec.notify, *filter(None, [self.owner_emails.get(spec.owner)])]))

    def _cluster_of(self, handle: dict) -> str | None:
        data = self.host.result(handle, "cluster.json")
        try:
            return json.loads(data)["name"] if data else None
        except (ValueError, KeyError, TypeError):
            return None

    # -- 3. starting ------------------------------------------------------------------------

    def _start_due(self, now: float, result: TickResult) -> None:
        for row in store.due_queued(self.ledger, now):
            if row.cancel_requested or not store.claim(self.ledger, row.id, now):
                continue
            spec = RunSpec.from_dict(json.loads(row.spec))
            try:
                size = self.sizes.get(spec.profile, charging.Size(0, 0, 0.0))
                charging.check_affordable(self.ledger, self.policy, spec.owner, size)
            except BudgetExceeded as exc:
                store.change(self.ledger, row.id, status=store.REFUSED, ended_at=now, message=exc.message)
                notice = notify.refused(row.job, row.id, exc.message)
                notify.send(self._recipients(spec), notice, self.policy.platform_name)
                result.refused.append(row.id)
                continue
            try:
                self._start(row, spec, now)
            except HubUnavailable as exc:  # e.g. the hub restarts across the slot: start when it is back
                store.change(self.ledger, row.id, status=store.QUEUED, next_attempt_at=now + START_RETRY_S,
                             message=f"waiting for the hub: {exc}"[:2000])
                continue
            except Exception as exc:  # the hub refused a token, a file could not be written: an attempt
                log.exception("could not start run %s", row.id)
                self._attempt_failed(row, spec, row.attempt + 1, store.FAILED, f"could not start: {exc}"[:2000],
                                     now, result, {})
                continue
            result.started.append(row.id)

    def _start(self, row: Row, spec: RunSpec, now: float) -> None:
        token, token_id = None, None
        if self.credentials is not None:
            token, token_id = self.credentials.issue(spec.owner, spec.timeout_s + 3600)
        attempt = row.attempt + 1
        handle = self.host.start(row.id, attempt, spec, row.payload, self.environment(spec, token),
                                 self.python_for(spec.environment))
        handle["token_id"] = token_id
        store.change(
            self.ledger, row.id, status=store.RUNNING, attempt=attempt, driver=json.dumps(handle),
            attempt_started_at=now, started_at=row.started_at or now, exit_code=None,
        )
