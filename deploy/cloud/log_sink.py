"""CloudWatch Logs as the hub VM's log sink: what `deploy.vm.logship` puts its lines into.

PutLogEvents' limits (AWS documentation, "PutLogEvents"): at most 10,000 events and
1,048,576 bytes per call, each event counting its UTF-8 message plus 26 bytes, an event at
most 256 KiB with that overhead. Sequence tokens are no longer needed (AWS ignores them
since January 2023). boto3 is imported when first used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from deploy.errors import RuntimeFailure

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_MESSAGE_BYTES = 262_144 - EVENT_OVERHEAD


class SinkError(RuntimeFailure):
    """The sink refused or could not be reached; the lines are shipped again later."""


@dataclass(frozen=True)
class Limits:
    """What one put may carry: events, bytes (each event's UTF-8 message plus `overhead`)
    and the largest message."""

    max_events: int
    max_bytes: int
    overhead: int
    max_message_bytes: int

    def size(self, message: str) -> int:
        return len(message.encode()) + self.overhead

    def fit(self, message: str) -> str:
        """`message` cut to the largest size the sink takes (on a character boundary)."""
        encoded = message.encode()
        if len(encoded) <= self.max_message_bytes:
            return message
        return encoded[:self.max_message_bytes].decode(errors="ignore")


CLOUDWATCH = Limits(MAX_BATCH_EVENTS, MAX_BATCH_BYTES, EVENT_OVERHEAD, MAX_MESSAGE_BYTES)


class LogSink(Protocol):
    """Where deploy.vm.logship puts a component's lines: CloudWatch Logs here, Cloud Logging
    in deploy.cloud.gcp_log_sink."""

    name: str  # as messages name it
    limits: Limits

    def put(self, stream: str, events: Sequence[tuple[int, str]]) -> dict:
        """Put `(timestamp ms, message)` events of `stream` (`hub/<component>`), within
        `limits`; returns what the sink rejected for good ({} when all were taken) and
        raises SinkError for what a later pass may ship."""
        ...


def event_size(message: str) -> int:
    return CLOUDWATCH.size(message)


def fit(message: str) -> str:
    """`message` cut to the largest size CloudWatch takes (on a character boundary)."""
    return CLOUDWATCH.fit(message)


class CloudWatchSink:
    name = "CloudWatch"
    limits = CLOUDWATCH

    def __init__(self, group: str, region: str | None = None, client: Any = None) -> None:
        self.group, self.region = group, region
        self._client = client
        self._streams: set[str] = set()

    @property
    def logs(self):
        if self._client is None:
            import boto3

            self._client = boto3.client("logs", region_name=self.region)
        return self._client

    def put(self, stream: str, events: Sequence[tuple[int, str]]) -> dict:
        """Put `(timestamp ms, message)` events, within one call's limits, creating the
        stream when it is missing. Returns CloudWatch's `rejectedLogEventsInfo` (events too
        old or too new, which no retry would change), {} when all were taken."""
        from botocore.exceptions import BotoCoreError, ClientError

        if stream not in self._streams:
            self._create_stream(stream)
        try:
            answer = self.logs.put_log_events(
                logGroupName=self.group, logStreamName=stream,
                logEvents=[{"timestamp": ts, "message": message} for ts, message in events])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                self._streams.discard(stream)  # deleted behind our back: made again next time
            raise SinkError(f"put_log_events to {self.group}/{stream} failed: {exc}") from None
        except BotoCoreError as exc:
            raise SinkError(f"put_log_events to {self.group}/{stream} failed: {exc}") from None
        return answer.get("rejectedLogEventsInfo") or {}

    def _create_stream(self, stream: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.logs.create_log_stream(logGroupName=self.group, logStreamName=stream)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                raise SinkError(f"cannot create the log stream {self.group}/{stream}: {exc}") from None
        except BotoCoreError as exc:
            raise SinkError(f"cannot create the log stream {self.group}/{stream}: {exc}") from None
        self._streams.add(stream)
