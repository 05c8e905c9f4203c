"""Where an EC2 launch is tried, in which order, and the RunInstances request for each try.

Order: spot first when the profile allows it (cheapest), in every zone, then on-demand in
every zone. Zones are tried in name order, so a cluster's machines land in the first zone
with capacity together: traffic between zones is billed, traffic inside one is not.

A batch of identical machines is one request with `MinCount = MaxCount = count`: EC2
places all of them in that zone and market or refuses, and the next attempt takes the
whole batch. Chosen over `MinCount=1` (a partial batch would need its own bookkeeping of
what is still missing, per attempt) and over an instant `CreateFleet` (it takes no user
data, so each batch would need a launch template version of its own, and the hub's IAM
policy would need `ec2:CreateFleet`). moto launches `MinCount` instances, so what the
tests see is what EC2 would do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from deploy.cloud.machines import TAG_PLATFORM, MachineSpec

SPOT, ON_DEMAND = "spot", "on-demand"
# EC2's answers that mean "not here, not now": try the next zone or market.
CAPACITY_ERRORS = frozenset({
    "InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
    "InsufficientFreeAddressesInSubnet", "SpotMaxPriceTooLow", "MaxSpotInstanceCountExceeded",
    "Unsupported",  # the instance type is not offered in this zone
})
TAGGED_AT_LAUNCH = ("instance", "volume", "network-interface")
SPOT_OPTIONS = {"MarketType": "spot",
                "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}}


class Refused(Exception):
    """EC2 had no capacity for an attempt."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Attempt:
    market: str
    zone: str | None  # None: where the launch template (or EC2) puts it
    subnet_id: str | None
    client_token: str

    def describe(self) -> str:
        return f"{self.market} in {self.zone or 'the default zone'}"


def client_token(spec: MachineSpec, market: str, zone: str | None) -> str:
    """Stable for one machine's one attempt (EC2: at most 64 ASCII characters). Each attempt
    has its own: EC2 refuses a token reused with other parameters."""
    key = "\0".join([spec.tags.get(TAG_PLATFORM, ""), spec.name, spec.template, str(spec.count), market, zone or ""])
    return hashlib.sha256(key.encode()).hexdigest()


def attempts(spec: MachineSpec, subnets: Mapping[str, str]) -> list[Attempt]:
    places: list[tuple[str | None, str | None]] = sorted(subnets.items()) or [(None, None)]
    markets = (SPOT, ON_DEMAND) if spec.spot else (ON_DEMAND,)
    return [Attempt(market, zone, subnet, client_token(spec, market, zone))
            for market in markets for zone, subnet in places]


def run_instances_request(spec: MachineSpec, attempt: Attempt, user_data: str) -> dict:
    tags = [{"Key": key, "Value": value}
            for key, value in {"Name": spec.name, "managed-by": "graticule", **spec.tags}.items()]
    kinds = TAGGED_AT_LAUNCH + (("spot-instances-request",) if attempt.market == SPOT else ())
    template = ({"LaunchTemplateId": spec.template} if spec.template.startswith("lt-")
                else {"LaunchTemplateName": spec.template})
    request: dict = {
        "LaunchTemplate": template,
        "MinCount": spec.count,
        "MaxCount": spec.count,
        "ClientToken": attempt.client_token,
        "InstanceInitiatedShutdownBehavior": "terminate",
        "TagSpecifications": [{"ResourceType": kind, "Tags": tags} for kind in kinds],
    }
    if attempt.subnet_id:
        request["SubnetId"] = attempt.subnet_id
    if spec.instance_profile:
        request["IamInstanceProfile"] = {"Name": spec.instance_profile}
    if spec.security_groups:
        request["SecurityGroupIds"] = list(spec.security_groups)
    if attempt.market == SPOT:
        request["InstanceMarketOptions"] = SPOT_OPTIONS
    if user_data:
        request["UserData"] = user_data  # boto3 base64-encodes it
    return request
