"""Budget periods: calendar months in UTC, as 'YYYY-MM' and [start, end) epoch seconds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

MONTH_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Month:
    name: str  # YYYY-MM
    starts_at: float
    ends_at: float

    @property
    def resets_at(self) -> str:
        return datetime.fromtimestamp(self.ends_at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def month_of(now: float) -> Month:
    moment = datetime.fromtimestamp(now, UTC)
    return month_named(f"{moment.year:04d}-{moment.month:02d}")


def month_named(name: str) -> Month:
    """The month 'YYYY-MM'; ValueError if the text is not one."""
    match = MONTH_PATTERN.match(name)
    if not match:
        raise ValueError(f"{name!r} is not a month; expected YYYY-MM, e.g. 2026-11")
    year, month = int(match[1]), int(match[2])
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return Month(name, start.timestamp(), end.timestamp())
