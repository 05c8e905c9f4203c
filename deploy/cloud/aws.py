"""Machines on AWS EC2, through boto3 (the `[aws]` extra), imported when first used.

A launch is one `RunInstances` from the profile's rendered launch template with every
tag at launch (instance, volumes, network interface, spot request: the hub's IAM policy
refuses untagged launches), `InstanceInitiatedShutdownBehavior=terminate` (the dead-man
switch's power-off then ends the bill; the template says so too, but the request is what
EC2, and moto, act on) and a `ClientToken` derived from the machine's name, so a retried
request starts nothing twice.

Where it goes (`placement.py` orders the attempts): spot first when the profile allows it
(spot is never set in the template, or on-demand could not be asked for), in each zone's
private subnet in turn, then on-demand likewise. A capacity error moves on to the next
attempt; any other error stops. A batch is `MinCount = MaxCount = count`: all of it in one
zone and market, or none (why: `placement.py`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from deploy.cloud import placement
from deploy.cloud.aws_clients import new_client
from deploy.cloud.deadman import with_deadman
from deploy.cloud.machines import TAG_PLATFORM, TERMINATED, Machine, MachinesError, MachineSpec

_STATES = {"shutting-down": "stopping"}  # EC2's words that differ from ours
_ENDED = ("shutting-down", "terminated", "stopping", "stopped")
# Worth the same request again (same ClientToken): throttling and EC2's own hiccups.
_TRANSIENT = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "InternalError", "InternalFailure",
              "ServiceUnavailable", "Unavailable"}
_ATTEMPTS = 3
_FILTER_VALUES = 200


class AWSMachines:
    def __init__(self, region: str, endpoint_url: str | None = None, client: Any = None, *,
                 subnets: Mapping[str, str] | None = None, platform: str | None = None) -> None:
        """`subnets`: {zone: private subnet id}; without it, the private subnets tagged
        `platform = <platform>` and `tier = private` (as the stack tags them) are looked up
        once; without either, instances go where the launch template says."""
        self.region, self.endpoint_url = region, endpoint_url
        self.platform = platform
        self._subnets = dict(subnets) if subnets is not None else None
        self._client = client

    @property
    def ec2(self):
        if self._client is None:
            # Retries are ours (`_call`): botocore would retry a capacity error (HTTP 500) in the
            # same zone instead of moving on.
            self._client = new_client("ec2", self.region, self.endpoint_url, single_attempt=True)
        return self._client

    def _call(self, operation: str, settled: Callable[[], dict | None] | None = None, **arguments) -> dict:
        """One EC2 call, tried again (same arguments, so the same ClientToken) after throttling or a
        lost connection. `settled`, asked before each new try, says whether the failed try took
        effect after all; its answer then stands (EC2 would answer a repeated token with the
        first launch, moto launches again)."""
        from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

        for attempt in range(_ATTEMPTS):
            if attempt and settled is not None and (answer := settled()) is not None:
                return answer
            try:
                return getattr(self.ec2, operation)(**arguments)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in placement.CAPACITY_ERRORS:
                    raise placement.Refused(code, str(exc)) from None
                if code not in _TRANSIENT or attempt == _ATTEMPTS - 1:
                    raise MachinesError(f"aws ec2 {operation} failed: {exc}") from None
            except (ConnectionError, HTTPClientError) as exc:
                if attempt == _ATTEMPTS - 1:
                    raise MachinesError(f"aws ec2 {operation} failed: {exc}") from None
            except BotoCoreError as exc:
                raise MachinesError(f"aws ec2 {operation} failed: {exc}") from None
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    # -- launching -------------------------------------------------------------------------

    def launch(self, spec: MachineSpec) -> Machine:
        if spec.count != 1:
            raise ValueError(f"launch starts one machine; {spec.name} asks for {spec.count}: use launch_batch")
        return self.launch_batch(spec)[0]

    def launch_batch(self, spec: MachineSpec) -> list[Machine]:
        if spec.count < 1:
            raise ValueError(f"{spec.name}: count must be at least 1, not {spec.count}")
        attempts = placement.attempts(spec, self.subnets())
        earlier = self._launched_by(spec, attempts)
        if earlier:
            return earlier  # launched before: a retried launch starts nothing new
        user_data = with_deadman(spec.user_data, spec.deadman) if spec.deadman else spec.user_data
        refusals: list[str] = []
        for attempt in attempts:
            try:
                answer = self._run(spec, attempt, user_data)
            except placement.Refused as refused:
                refusals.append(f"{attempt.describe()} ({refused.code})")
                continue
            return [_machine(instance) for instance in answer["Instances"]]
        raise MachinesError(
            f"aws ec2 run_instances refused {spec.count} x {spec.name} from launch template {spec.template} "
            f"for lack of capacity; tried {', '.join(refusals)}"
        )

    def _run(self, spec: MachineSpec, attempt: placement.Attempt, user_data: str) -> dict:
        request = placement.run_instances_request(spec, attempt, user_data)

        def settled() -> dict | None:
            launched = self._launched_raw(spec, [attempt])
            return {"Instances": launched} if launched else None

        return self._call("run_instances", settled=settled, **request)

    def _launched_raw(self, spec: MachineSpec, attempts: Sequence[placement.Attempt]) -> list[dict]:
        tokens = {attempt.client_token for attempt in attempts}
        filters = [{"Name": "tag:Name", "Values": [spec.name]},
                   {"Name": "instance-state-name", "Values": ["pending", "running"]}]
        if TAG_PLATFORM in spec.tags:
            filters.append({"Name": f"tag:{TAG_PLATFORM}", "Values": [spec.tags[TAG_PLATFORM]]})
        return [raw for raw in self._raw_instances(Filters=filters) if raw.get("ClientToken") in tokens]

    def _launched_by(self, spec: MachineSpec, attempts: Sequence[placement.Attempt]) -> list[Machine]:
        return [_machine(raw) for raw in self._launched_raw(spec, attempts)]

    def subnets(self) -> dict[str, str]:
        """{zone: private subnet id} the launches try, in zone order."""
        if self._subnets is None:
            found: dict[str, str] = {}
            if self.platform:
                answer = self._call("describe_subnets", Filters=[
                    {"Name": f"tag:{TAG_PLATFORM}", "Values": [self.platform]},
                    {"Name": "tag:tier", "Values": ["private"]},
                ])
                found = {s["AvailabilityZone"]: s["SubnetId"] for s in answer.get("Subnets", [])}
                if not found:  # asked again next time: never fall back to the template's placement
                    raise MachinesError(f"aws ec2: no private subnets tagged platform={self.platform} "
                                        f"tier=private in {self.region}")
            self._subnets = found
        return dict(sorted(self._subnets.items()))

    # -- the rest of the protocol ------------------------------------------------------------

    def describe(self, ids: Sequence[str]) -> dict[str, Machine]:
        # A filter, not InstanceIds=: an unknown id is then left out instead of failing the call.
        # EC2 takes at most 200 values per filter.
        ids, found = list(ids), {}
        for start in range(0, len(ids), _FILTER_VALUES):
            chunk = ids[start:start + _FILTER_VALUES]
            found |= {m.id: m for m in self._instances(Filters=[{"Name": "instance-id", "Values": chunk}])}
        return found

    def terminate(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), 500):  # well under EC2's limit per request
            self._call("terminate_instances", InstanceIds=ids[start:start + 500])

    def list(self, tags: Mapping[str, str]) -> list[Machine]:
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items()]
        return [machine for machine in self._instances(Filters=filters) if machine.state != TERMINATED]

    def _instances(self, **arguments) -> list[Machine]:
        return [_machine(raw) for raw in self._raw_instances(**arguments)]

    def _raw_instances(self, **arguments) -> list[dict]:
        instances: list[dict] = []
        while True:
            answer = self._call("describe_instances", **arguments)
            instances += [i for r in answer.get("Reservations", []) for i in r.get("Instances", [])]
            if not answer.get("NextToken"):
                return instances
            arguments["NextToken"] = answer["NextToken"]


def _machine(instance: dict) -> Machine:
    state = instance.get("State", {}).get("Name", "pending")
    return Machine(
        id=instance["InstanceId"],
        state=_STATES.get(state, state),
        private_ip=instance.get("PrivateIpAddress"),
        tags={tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])},
        launched_at=instance.get("LaunchTime"),
        zone=instance.get("Placement", {}).get("AvailabilityZone"),
        spot=instance.get("InstanceLifecycle") == "spot",
        ended_at=_transition_time(instance) if state in _ENDED else None,
    )


# EC2 dates a stop or termination only in prose: "User initiated (2026-12-04 18:00:00 GMT)".
_TRANSITION_TIME = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?:GMT|UTC)\)")


def _transition_time(instance: dict) -> datetime | None:
    found = _TRANSITION_TIME.search(instance.get("StateTransitionReason") or "")
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) if found else None
