"""Machines on AWS EC2, through boto3 (the `[aws]` extra), imported when first used.

Launches from the rendered launch templates; tags carry the name and the platform's
own tags, so `list` finds a platform's machines by tag after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deploy.cloud.machines import TERMINATED, Machine, MachinesError, MachineSpec

_STATES = {"shutting-down": "stopping"}  # EC2's words that differ from ours


class AWSMachines:
    def __init__(self, region: str, endpoint_url: str | None = None, client: Any = None) -> None:
        self.region, self.endpoint_url = region, endpoint_url
        self._client = client

    @property
    def ec2(self):
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise MachinesError("boto3 is not installed: pip install 'graticule[aws]'") from None
            self._client = boto3.client("ec2", region_name=self.region, endpoint_url=self.endpoint_url)
        return self._client

    def _call(self, operation: str, **arguments) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.ec2, operation)(**arguments)
        except (ClientError, BotoCoreError) as exc:
            raise MachinesError(f"aws ec2 {operation} failed: {exc}") from None

    def launch(self, spec: MachineSpec) -> Machine:
        tags = [{"Key": key, "Value": value} for key, value in {"Name": spec.name, **spec.tags}.items()]
        arguments: dict[str, Any] = {
            "LaunchTemplate": {"LaunchTemplateName": spec.template},
            "MinCount": 1,
            "MaxCount": 1,
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
        }
        if spec.user_data:
            arguments["UserData"] = spec.user_data  # boto3 base64-encodes it
        answer = self._call("run_instances", **arguments)
        return _machine(answer["Instances"][0])

    def describe(self, ids: Sequence[str]) -> dict[str, Machine]:
        if not ids:
            return {}
        # A filter, not InstanceIds=: an unknown id is then left out instead of failing the call.
        found = self._instances(Filters=[{"Name": "instance-id", "Values": list(ids)}])
        return {machine.id: machine for machine in found}

    def terminate(self, ids: Sequence[str]) -> None:
        if ids:
            self._call("terminate_instances", InstanceIds=list(ids))

    def list(self, tags: Mapping[str, str]) -> list[Machine]:
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items()]
        return [machine for machine in self._instances(Filters=filters) if machine.state != TERMINATED]

    def _instances(self, **arguments) -> list[Machine]:
        machines = []
        while True:
            answer = self._call("describe_instances", **arguments)
            machines += [_machine(i) for r in answer.get("Reservations", []) for i in r.get("Instances", [])]
            if not answer.get("NextToken"):
                return machines
            arguments["NextToken"] = answer["NextToken"]


def _machine(instance: dict) -> Machine:
    state = instance.get("State", {}).get("Name", "pending")
    return Machine(
        id=instance["InstanceId"],
        state=_STATES.get(state, state),
        private_ip=instance.get("PrivateIpAddress"),
        tags={tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])},
    )
