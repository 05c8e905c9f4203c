"""The rendered AWS stack's front door, created in moto with boto3 from `main.tf.json`.

For simulator tests that need their own instances (with their own user data) behind the
load balancers and security groups exactly as rendered: the stack's security groups and
ingress rules, load balancers, target groups, attachments and listeners are read from
the rendered JSON and created one by one, their `${type.name.attr}` references resolved
to what was created (or to what the test supplies: subnets, the VPC, instances, the
certificate). Egress rules are skipped (the simulator does not model them), and so are
rules naming a prefix list (the S3 gateway endpoint, not modelled either).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_REFERENCE = re.compile(r"^\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z_]+)\}$")


class RenderedFrontDoor:
    def __init__(self, moto, stack: Mapping, known: Mapping[str, str]) -> None:
        """`known`: values for references the test provides, e.g.
        {"${aws_vpc.main.id}": vpc, "${aws_subnet.public_0.id}": subnet, "${aws_instance.hub.id}": hub}."""
        self.ec2, self.elb = moto.client("ec2"), moto.client("elbv2")
        self.resources = stack["resource"]
        self.values: dict[str, str] = dict(known)

    def resolve(self, value):
        if isinstance(value, str) and _REFERENCE.match(value):
            if value not in self.values:
                raise KeyError(f"{value}: not created here, and the test did not supply it")
            return self.values[value]
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    def create(self) -> dict[str, str]:
        """Everything, in dependency order; returns the security group ids by rendered name."""
        groups = self.security_groups()
        self.load_balancers()
        return groups

    def security_groups(self) -> dict[str, str]:
        vpc = self.resolve("${aws_vpc.main.id}")
        ids = {}
        for name, block in self.resources.get("aws_security_group", {}).items():
            ids[name] = self.ec2.create_security_group(GroupName=block["name"], Description=block["description"],
                                                       VpcId=vpc)["GroupId"]
            self.values[f"${{aws_security_group.{name}.id}}"] = ids[name]
        for block in self.resources.get("aws_vpc_security_group_ingress_rule", {}).values():
            if block.get("prefix_list_id"):
                continue
            permission: dict = {"IpProtocol": block["ip_protocol"], "FromPort": block["from_port"],
                                "ToPort": block["to_port"]}
            if block.get("cidr_ipv4"):
                permission["IpRanges"] = [{"CidrIp": block["cidr_ipv4"]}]
            else:
                permission["UserIdGroupPairs"] = [{"GroupId": self.resolve(block["referenced_security_group_id"])}]
            self.ec2.authorize_security_group_ingress(GroupId=self.resolve(block["security_group_id"]),
                                                      IpPermissions=[permission])
        return ids

    def load_balancers(self) -> None:
        for name, block in self.resources.get("aws_lb", {}).items():
            created = self.elb.create_load_balancer(
                Name=block["name"], Subnets=self.resolve(block["subnets"]), Type=block["load_balancer_type"],
                SecurityGroups=self.resolve(block.get("security_groups", [])),
                Scheme="internal" if block.get("internal") else "internet-facing")["LoadBalancers"][0]
            self.values[f"${{aws_lb.{name}.arn}}"] = created["LoadBalancerArn"]
        for name, block in self.resources.get("aws_lb_target_group", {}).items():
            created = self.elb.create_target_group(
                Name=block["name"], Protocol=block["protocol"], Port=block["port"], VpcId=self.resolve(block["vpc_id"]),
                TargetType=block["target_type"])["TargetGroups"][0]
            self.values[f"${{aws_lb_target_group.{name}.arn}}"] = created["TargetGroupArn"]
        for block in self.resources.get("aws_lb_target_group_attachment", {}).values():
            self.elb.register_targets(TargetGroupArn=self.resolve(block["target_group_arn"]),
                                      Targets=[{"Id": self.resolve(block["target_id"]), "Port": block["port"]}])
        for block in self.resources.get("aws_lb_listener", {}).values():
            extra = {}
            if block.get("certificate_arn"):
                extra = {"Certificates": [{"CertificateArn": self.resolve(block["certificate_arn"])}],
                         "SslPolicy": block["ssl_policy"]}
            self.elb.create_listener(LoadBalancerArn=self.resolve(block["load_balancer_arn"]),
                                     Protocol=block["protocol"], Port=block["port"],
                                     DefaultActions=[self._action(a) for a in block["default_action"]], **extra)

    def _action(self, action: Mapping) -> dict:
        if action["type"] == "forward":
            return {"Type": "forward", "TargetGroupArn": self.resolve(action["target_group_arn"])}
        if action["type"] == "redirect":
            redirect = action["redirect"]
            config = {"Protocol": redirect["protocol"], "Port": redirect["port"], "StatusCode": redirect["status_code"]}
            return {"Type": "redirect", "RedirectConfig": config}
        raise ValueError(f"listener action {action['type']!r} is not translated here")
