"""A real SMTP server (aiosmtpd) on this machine's loopback, and the inbox it delivers to."""

from __future__ import annotations

import contextlib
import email
import email.policy
from collections.abc import Iterator

from aiosmtpd.controller import Controller

from tests.support.procs import free_port


class Inbox:
    """An SMTP server's handler that refuses the first `failures` messages (451: try later)."""

    def __init__(self) -> None:
        self.subjects: list[str] = []
        self.bodies: list[str] = []
        self.failures = 0

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        if self.failures:
            self.failures -= 1
            return "451 4.3.0 try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.subjects.append(message["Subject"])
        self.bodies.append(message.get_content().replace("\r\n", "\n"))
        return "250 OK"


@contextlib.contextmanager
def running_inbox() -> Iterator[tuple[Inbox, Controller]]:
    """An SMTP server on a free loopback port delivering to an Inbox; stopped after."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller
    finally:
        controller.stop()
