"""Budget alerts: always logged, and mailed over SMTP when a server is configured.

The SMTP server comes from the environment (`GRATICULE_SMTP_HOST`, `GRATICULE_SMTP_PORT`,
default port 25), never from platform.yaml; recipients are `integrations.alerts.email`.
"""

from __future__ import annotations

import logging
import os
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from deploy.runtime import env

SMTP_HOST_ENV, SMTP_PORT_ENV, SENDER_ENV = env.SMTP_HOST, env.SMTP_PORT, env.ALERTS_FROM

log = logging.getLogger("graticule.budgets")


@dataclass(frozen=True)
class Alert:
    budget: str
    month: str
    threshold: int
    spent_usd: float
    limit_usd: float
    resets_at: str

    @property
    def subject(self) -> str:
        return f"budget '{self.budget}' reached {self.threshold}% for {self.month}"

    @property
    def body(self) -> str:
        percent = 100.0 * self.spent_usd / self.limit_usd
        return (
            f"Budget '{self.budget}' has spent ${self.spent_usd:.2f} of ${self.limit_usd:.2f} "
            f"in {self.month} ({percent:.1f}%), crossing the {self.threshold}% alert.\n"
            f"It resets {self.resets_at}.\n"
        )


class Mailer:
    def __init__(
        self, recipients: tuple[str, ...], host: str | None = None, port: int | None = None, sender: str = ""
    ) -> None:
        self.recipients = recipients
        self.host = host if host is not None else os.environ.get(SMTP_HOST_ENV)
        self.port = port if port is not None else int(os.environ.get(SMTP_PORT_ENV) or 25)
        self.sender = sender or os.environ.get(SENDER_ENV) or "graticule@localhost"

    @property
    def enabled(self) -> bool:
        """Whether there is anyone to mail and a server to mail through."""
        return bool(self.recipients and self.host)

    def log(self, alert: Alert, platform_name: str) -> None:
        log.warning("%s: %s", platform_name, alert.body.strip().replace("\n", " "))

    def send(self, alert: Alert, platform_name: str) -> bool:
        """Log the alert; mail it if possible. True when mailed."""
        self.log(alert, platform_name)
        return self.mail(alert, platform_name)

    def mail(self, alert: Alert, platform_name: str) -> bool:
        """Mail the alert (no log line of the alert itself). True when mailed."""
        if not self.enabled:
            return False
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Subject"] = f"[{platform_name}] {alert.subject}"
        message.set_content(alert.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("could not mail budget alert to %s via %s:%s: %s", message["To"], self.host, self.port, exc)
            return False
        return True
