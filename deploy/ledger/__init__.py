"""The usage ledger: every scheduler and worker interval, in SQLite or PostgreSQL.

Money is computed from intervals (`deploy.ledger.queries`), never kept in a counter.
"""

from deploy.ledger.clock import Clock, ManualClock, system_clock
from deploy.ledger.engine import LEDGER_URL_ENV, open_engine, resolve_url
from deploy.ledger.ledger import Ledger, Process, ProcessKey
from deploy.ledger.periods import Month, month_named, month_of

__all__ = [
    "LEDGER_URL_ENV",
    "Clock",
    "Ledger",
    "ManualClock",
    "Month",
    "Process",
    "ProcessKey",
    "month_named",
    "month_of",
    "open_engine",
    "resolve_url",
    "system_clock",
]
