"""Which slots of a cron schedule are due now: a pure function of the schedule, how far
the scheduler had looked, and `now` (a test clock goes in here; nothing reads a clock).

At most the newest slot since the last look runs; older ones were missed (the platform
was down) and are skipped. The newest runs if it is on time (reached within `ON_TIME_S`)
or, when it too was missed, if the job's policy is `run_once`; under `skip` it is skipped
like the others. Skipped slots are recorded too, so history shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from render import cron
from render.job_spec import Schedule

ON_TIME_S = 120.0


@dataclass(frozen=True)
class Due:
    run: list[float]  # slots to start now, oldest first
    skip: list[float]  # missed slots not to run
    checked_through: float  # the cursor after this decision


def due(schedule: Schedule, checked_through: float | None, now: float, on_time_s: float = ON_TIME_S) -> Due:
    if checked_through is None:  # a job seen for the first time is scheduled from now on
        return Due([], [], now)
    if now <= checked_through:  # the clock stepped back: wait for it
        return Due([], [], checked_through)
    slots = cron.slots_between(schedule.cron, schedule.timezone, checked_through, now)
    if not slots:
        return Due([], [], now)
    newest, older = slots[-1], slots[:-1]
    if now - newest <= on_time_s or schedule.missed == "run_once":
        return Due([newest], older, now)
    return Due([], slots, now)
