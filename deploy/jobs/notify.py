"""Telling a job's people: a run that failed for good, a run its budget refused.

By mail through the alerts integration's SMTP settings (deploy.budgets.alerts.Mailer),
to the job's `notify` list (the owner's e-mail is on it), and always in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from deploy.budgets.alerts import Mailer

log = logging.getLogger("graticule.jobs")


@dataclass(frozen=True)
class Notice:
    subject: str
    body: str


def failed(job: str, run_id: int, attempts: int, status: str, message: str, log_tail: str) -> Notice:
    tail = "\n".join(log_tail.splitlines()[-40:])
    return Notice(
        f"job '{job}' run {run_id} {status.replace('_', ' ')} after {attempts} attempt(s)",
        f"Run {run_id} of job '{job}' ended {status} after {attempts} attempt(s): {message}\n\n"
        f"Last lines of its log (`platform jobs logs {run_id}`):\n{tail}\n",
    )


def refused(job: str, run_id: int, reason: str) -> Notice:
    return Notice(
        f"job '{job}' run {run_id} not started: budget",
        f"Run {run_id} of job '{job}' was not started: {reason}\n",
    )


def send(recipients: list[str], notice: Notice, platform_name: str) -> bool:
    """Log the notice; mail it when there are recipients and an SMTP server. True if mailed."""
    log.warning("%s: %s", platform_name, notice.subject)
    return Mailer(tuple(recipients)).mail(notice, platform_name)
