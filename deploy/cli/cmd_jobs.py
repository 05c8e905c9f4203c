"""`platform jobs next|list|run|logs|cancel`: batch jobs of the local platform.

- `next [NAME] [--count N]`: the next run times of the declared schedules (no platform needed);
- `list [--job NAME] [--user U] [--json]`: runs, newest first, from the usage database;
- `run NAME`: queue an on-demand run of a declared job (the scheduler starts it within seconds);
- `logs RUN`: a run's log; `cancel RUN`: stop a run (or drop it if it has not started).
These read and write the database directly, as the platform's operator; users see and
cancel only their own runs, through the SDK (`graticule.jobs()`) and the gateway's API.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from deploy.cli.common import CommandError, UsageError, print_json
from deploy.cli.common import load as load_platform


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("jobs", help="batch jobs: next run times, runs, logs, on-demand runs")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    nxt = actions.add_parser("next", help="the next run times of the declared schedules")
    nxt.add_argument("name", nargs="?", help="only this job")
    nxt.add_argument("--count", type=int, default=3)
    listing = actions.add_parser("list", help="runs, newest first")
    listing.add_argument("--job")
    listing.add_argument("--user")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    run = actions.add_parser("run", help="queue an on-demand run of a declared job")
    run.add_argument("name")
    logs = actions.add_parser("logs", help="a run's log")
    logs.add_argument("run", type=int)
    cancel = actions.add_parser("cancel", help="stop a run")
    cancel.add_argument("run", type=int)
    for sub in (nxt, listing, run, logs, cancel):
        sub.add_argument("--file", "-f", dest="path", default="platform.yaml", help="platform.yaml")
        if sub is not nxt:
            sub.add_argument("--state", help="state directory (default: .platform/<name>/)")
            sub.add_argument("--db", help="usage database URL (default: SQLite in the state directory)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    return {"next": _next, "list": _list, "run": _queue, "logs": _logs, "cancel": _cancel}[args.action](args)


def _next(args: argparse.Namespace) -> int:
    platform = load_platform(args)
    jobs = {name: job for name, job in platform.jobs.items() if args.name in (None, name)}
    if args.name and not jobs:
        raise UsageError(f"no job {args.name!r} in {args.path}; declared: {', '.join(platform.jobs) or 'none'}")
    for line in schedule_lines(jobs, time.time(), args.count):
        print(line)
    return 0


def schedule_lines(jobs: dict, now: float, count: int = 3) -> list[str]:
    """One line per job: its schedule and next `count` run times in its time zone."""
    from render import cron

    lines = []
    for name, job in sorted(jobs.items()):
        if job.schedule is None:
            lines.append(f"{name}: on demand only (no schedule)")
            continue
        times = cron.next_times(job.schedule.cron, job.schedule.timezone, now, count)
        shown = ", ".join(t.strftime("%Y-%m-%d %H:%M %Z") for t in times)
        lines.append(f"{name} ({job.schedule.cron}, {job.schedule.timezone}): next {shown}")
    return lines


def _ledger(args: argparse.Namespace):
    from deploy.ledger import LEDGER_URL_ENV, Ledger
    from deploy.ledger.engine import SQLITE_FILENAME
    from deploy.runtime.state import state_dir_for

    platform = load_platform(args)
    state = state_dir_for(platform.name, args.state)
    if not args.db and not os.environ.get(LEDGER_URL_ENV) and not (state / SQLITE_FILENAME).exists():
        raise CommandError(f"no usage database at {state / SQLITE_FILENAME}: has the platform run (`platform up`)?")
    return platform, Ledger.open(args.db, Path(state))


def _list(args: argparse.Namespace) -> int:
    from deploy.jobs import store

    _, ledger = _ledger(args)
    try:
        runs = store.runs(ledger, owner=args.user, job=args.job, limit=args.limit)
    finally:
        ledger.close()
    if args.json:
        print_json([run.as_dict() for run in runs])
        return 0
    print(f"{'RUN':>5}  {'JOB':<20} {'OWNER':<10} {'KIND':<9} {'STATUS':<10} {'TRY':>3}  {'STARTED (UTC)':<16}  COST")
    for run in runs:
        print(f"{run.id:>5}  {run.job[:20]:<20} {run.owner[:10]:<10} {run.kind:<9} {run.status:<10} "
              f"{run.attempt:>3}  {_when(run.started_at):<16}  ${run.cost_usd:.4f}"
              + (f"  {run.message}" if run.message else ""))
    return 0


def _when(at: float | None) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M") if at else "-"


def _queue(args: argparse.Namespace) -> int:
    from deploy.jobs import store
    from render.job_spec import declared_spec

    platform, ledger = _ledger(args)
    job = platform.jobs.get(args.name)
    if job is None:
        ledger.close()
        raise UsageError(f"no job {args.name!r} in {args.path}; declared: {', '.join(platform.jobs) or 'none'}")
    try:
        run_id = store.enqueue(ledger, declared_spec(platform, args.name, job), "manual", ledger.clock())
    finally:
        ledger.close()
    print(f"queued run {run_id} of job {args.name!r} (`platform jobs logs {run_id}` for its log)")
    return 0


def _logs(args: argparse.Namespace) -> int:
    from deploy.jobs import store

    _, ledger = _ledger(args)
    try:
        row = store.get(ledger, args.run)
    finally:
        ledger.close()
    if row is None:
        raise UsageError(f"no run {args.run}")
    sys.stdout.write(row.log)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from deploy.jobs import store

    _, ledger = _ledger(args)
    try:
        if store.get(ledger, args.run) is None:
            raise UsageError(f"no run {args.run}")
        asked = store.request_cancel(ledger, args.run)
    finally:
        ledger.close()
    print(f"run {args.run}: cancel requested" if asked else f"run {args.run} has already ended")
    return 0
