"""Cron schedules with a time zone: validation for the schema, and the next run times.

Pure: the caller says from when (`after`); nothing here reads a clock. croniter does the
calendar arithmetic (month lengths, day-of-week, daylight-saving gaps and repeats).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterError, croniter

from render.findings import suggest


def check_expression(text: str) -> str:
    """A five-field cron expression (minute hour day-of-month month day-of-week)."""
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"{text!r} is not a cron expression: it needs 5 fields (minute hour day month weekday), "
            f"got {len(fields)}; e.g. '30 2 * * *' is 02:30 every day"
        )
    try:
        croniter(text)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"{text!r} is not a valid cron expression: {exc}") from None
    return text


def check_timezone(name: str) -> str:
    """An IANA time zone name such as 'Europe/Paris' or 'UTC'."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        hint = suggest(name, sorted(available_timezones()))
        raise ValueError(f"unknown time zone {name!r}{hint}; use an IANA name such as 'Europe/Paris'") from None
    return name


def next_times(expression: str, zone: str, after: float, count: int = 3) -> list[datetime]:
    """The next `count` run times strictly after `after` (UTC epoch seconds), in `zone`."""
    start = datetime.fromtimestamp(after, ZoneInfo(zone))
    schedule = croniter(expression, start)
    return [schedule.get_next(datetime) for _ in range(count)]


def slots_between(expression: str, zone: str, after: float, until: float, limit: int = 1000) -> list[float]:
    """Run times (UTC epoch seconds) in (after, until], oldest first; at most `limit` of the newest."""
    start = datetime.fromtimestamp(after, ZoneInfo(zone))
    schedule = croniter(expression, start)
    found: list[float] = []
    while True:
        slot = schedule.get_next(datetime).astimezone(UTC).timestamp()
        if slot > until:
            return found[-limit:]
        found.append(slot)
        if len(found) > 2 * limit:  # a long outage of a frequent job: only the newest matter
            del found[:limit]
