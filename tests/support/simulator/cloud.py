"""What the simulator reads from moto: instances, their subnets, groups, user data and roles."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from .imds import fallback_credentials

LIVE = {"pending", "running"}
GONE = {"shutting-down", "terminated", "stopping", "stopped"}


@dataclass(frozen=True)
class Instance:
    instance_id: str
    state: str
    ip: str
    subnet_id: str
    zone: str
    instance_type: str
    image_id: str
    group_ids: tuple[str, ...]
    profile_arn: str | None


class CloudView:
    def __init__(self, moto) -> None:
        self.moto = moto
        self.ec2 = moto.client("ec2")

    def instances(self) -> list[Instance]:
        found = []
        for page in self.ec2.get_paginator("describe_instances").paginate():
            for reservation in page["Reservations"]:
                shared = _reservation_profile(reservation)
                for raw in reservation["Instances"]:
                    found.append(Instance(
                        instance_id=raw["InstanceId"], state=raw["State"]["Name"],
                        ip=raw.get("PrivateIpAddress", ""), subnet_id=raw.get("SubnetId", ""),
                        zone=raw.get("Placement", {}).get("AvailabilityZone", ""),
                        instance_type=raw.get("InstanceType", ""), image_id=raw.get("ImageId", ""),
                        group_ids=tuple(g["GroupId"] for g in raw.get("SecurityGroups", [])),
                        profile_arn=raw.get("IamInstanceProfile", {}).get("Arn") or shared))
        return found

    def subnet_cidr(self, subnet_id: str) -> str:
        return self.ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["CidrBlock"]

    def user_data(self, instance_id: str) -> bytes:
        attribute = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        encoded = attribute.get("UserData", {}).get("Value")
        return base64.b64decode(encoded) if encoded else b""

    def security_groups(self, group_ids: set[str]) -> dict[str, dict]:
        if not group_ids:
            return {}
        groups = self.ec2.describe_security_groups(GroupIds=sorted(group_ids))["SecurityGroups"]
        return {g["GroupId"]: g for g in groups}

    def profile_of(self, instance_id: str) -> str | None:
        """The instance profile associated with an instance now."""
        raw = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        found = raw.get("IamInstanceProfile", {}).get("Arn")
        if found:
            return found
        for page in self.ec2.get_paginator("describe_instances").paginate():  # its whole reservation
            for reservation in page["Reservations"]:
                if any(other["InstanceId"] == instance_id for other in reservation["Instances"]):
                    return _reservation_profile(reservation)
        return None

    def role_of(self, profile_arn: str | None) -> tuple[str, str] | None:
        """(role name, role ARN) of an instance profile, or None."""
        if not profile_arn:
            return None
        name = profile_arn.rsplit("/", 1)[-1]
        roles = self.moto.client("iam").get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]
        return (roles[0]["RoleName"], roles[0]["Arn"]) if roles else None

    def role_credentials(self, role_arn: str, session: str) -> dict:
        """Moto's own temporary credentials for the role, as IMDS formats them."""
        try:
            issued = self.moto.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]
        except Exception:  # an unusual role moto refuses still gets working (any-key) credentials
            return fallback_credentials()
        return {"Code": "Success", "LastUpdated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Type": "AWS-HMAC", "AccessKeyId": issued["AccessKeyId"],
                "SecretAccessKey": issued["SecretAccessKey"], "Token": issued["SessionToken"],
                "Expiration": issued["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ")}


def _reservation_profile(reservation: dict) -> str | None:
    """The instance profile of one RunInstances: EC2 gives it to every instance of the
    request, moto associates it with the first one only (so a batch's others get it here)."""
    return next((raw["IamInstanceProfile"]["Arn"] for raw in reservation.get("Instances", [])
                 if raw.get("IamInstanceProfile", {}).get("Arn")), None)
