"""What the operator's `platform status`, `logs` and `token` ask AWS, with the operator's
own credentials (boto3's usual chain; `AWS_ENDPOINT_URL` is honoured).

Three calls and nothing else: the hub instance's state (EC2), a secret's value (Secrets
Manager) and a log stream's events (CloudWatch Logs). boto3 is imported when first used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from deploy.errors import RuntimeFailure, UserError


class AwsCallFailed(RuntimeFailure):
    """An AWS API call failed; `code` is AWS's error code when AWS answered."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class InstanceState:
    id: str
    state: str  # EC2's word: pending, running, stopping, stopped, shutting-down, terminated
    private_ip: str | None


class AwsOperator:
    def __init__(self, region: str) -> None:
        self.region = region
        self._clients: dict[str, Any] = {}

    def _client(self, service: str):
        if service not in self._clients:
            try:
                import boto3
            except ImportError:
                raise UserError("boto3 is not installed: pip install 'graticule[platform,aws]'") from None
            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]

    def _call(self, service: str, operation: str, **arguments) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client(service), operation)(**arguments)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            raise AwsCallFailed(f"aws {service} {operation} failed: {exc}", code) from None
        except BotoCoreError as exc:
            raise AwsCallFailed(f"aws {service} {operation} failed: {exc}") from None

    def instance(self, instance_id: str) -> InstanceState | None:
        """The instance, or None when EC2 does not know it (any more)."""
        # A filter, not InstanceIds=: an unknown id is then an empty answer, not an error.
        answer = self._call("ec2", "describe_instances", Filters=[{"Name": "instance-id", "Values": [instance_id]}])
        for reservation in answer.get("Reservations", []):
            for raw in reservation.get("Instances", []):
                return InstanceState(raw["InstanceId"], raw["State"]["Name"], raw.get("PrivateIpAddress"))
        return None

    def secret(self, name: str) -> str | None:
        """The secret's current value, or None when it does not exist or has no value yet."""
        try:
            return self._call("secretsmanager", "get_secret_value", SecretId=name).get("SecretString")
        except AwsCallFailed as exc:
            if exc.code == "ResourceNotFoundException":  # also: the secret exists without a value
                return None
            raise

    def log_events(self, group: str, stream: str, *, last: int, follow: bool = False,
                   wait: Callable[[], None] = lambda: time.sleep(1.0)) -> Iterator[str]:
        """The stream's last `last` messages (up to 10,000; all of those when `last` <= 0),
        oldest first; with `follow`, then each new one as it arrives (`wait()` between
        polls), until the caller stops iterating."""
        try:
            answer = self._call("logs", "get_log_events", logGroupName=group, logStreamName=stream,
                                startFromHead=False, limit=min(last, 10000) if last > 0 else 10000)
        except AwsCallFailed as exc:
            if exc.code == "ResourceNotFoundException":
                raise UserError(f"no log stream {stream!r} in the log group {group}: nothing was shipped "
                                f"for it (is the component's name right? is the hub VM up?)") from None
            raise
        yield from (event["message"] for event in answer.get("events", []))
        token = answer.get("nextForwardToken")
        while follow:
            answer = self._call("logs", "get_log_events", logGroupName=group, logStreamName=stream,
                                startFromHead=True, nextToken=token)
            yield from (event["message"] for event in answer.get("events", []))
            if answer.get("nextForwardToken") == token:
                wait()
            token = answer.get("nextForwardToken", token)
