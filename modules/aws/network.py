"""VPC, subnets, routing, NAT (egress: nat) or VPC endpoints only (egress: none)."""

from __future__ import annotations

import ipaddress

from constructs import Construct

from modules.aws.base import data, name_tag, ref, res
from modules.aws.spec import AwsSpec

# What the hub and the workers call when there is no internet: EC2 (the gateway launches
# workers), STS (credentials), CloudWatch Logs, Secrets Manager (hub OAuth secret), and
# the three SSM endpoints that Session Manager needs (there is no SSH).
INTERFACE_ENDPOINTS = ("ec2", "ec2messages", "logs", "secretsmanager", "ssm", "ssmmessages", "sts")


def subnet_cidrs(vpc_cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Private subnets take the first `zones` of 16 equal slices, public ones the upper half."""
    network = ipaddress.IPv4Network(vpc_cidr)
    slices = list(network.subnets(prefixlen_diff=4))
    public_zones = max(zones, 2)  # an application load balancer needs two zones
    return [str(s) for s in slices[:zones]], [str(s) for s in slices[8 : 8 + public_zones]]


def hub_private_ip(vpc_cidr: str, zones: int) -> str:
    """The hub's fixed address: the last one AWS lets an instance have in the first private
    subnet (AWS reserves the first four and the broadcast address), easy to recognise.
    Fixed, so that a replaced hub answers where every running machine's dead-man switch
    and worker launcher already ask. It is free when the hub asks for it: the hub exists
    before any machine it launches, and while it is being replaced nothing launches."""
    first_private = ipaddress.IPv4Network(subnet_cidrs(vpc_cidr, zones)[0][0])
    return str(first_private[-2])


class Network(Construct):
    def __init__(self, scope: Construct, spec: AwsSpec) -> None:
        super().__init__(scope, "network")
        name = spec.name
        data(self, "aws_availability_zones", "available", {"state": "available"})
        self.vpc = res(self, "aws_vpc", "main", {
            "cidr_block": spec.vpc_cidr,
            "enable_dns_support": True,
            "enable_dns_hostnames": True,  # private DNS names of the interface endpoints
            "tags": name_tag(name),
        })
        vpc_id = ref(self.vpc, "id")
        # The default security group would allow all traffic between its members: empty it.
        res(self, "aws_default_security_group", "default", {
            "vpc_id": vpc_id, "tags": name_tag(f"{name}-default-unused"),
        })

        private_cidrs, public_cidrs = subnet_cidrs(spec.vpc_cidr, spec.zones)
        self.private_subnets = [
            res(self, "aws_subnet", f"private_{i}", {
                "vpc_id": vpc_id,
                "cidr_block": cidr,
                "availability_zone": f"${{data.aws_availability_zones.available.names[{i}]}}",
                "map_public_ip_on_launch": False,
                "tags": name_tag(f"{name}-private-{i}", tier="private"),
            })
            for i, cidr in enumerate(private_cidrs)
        ]
        self.public_subnets = [
            res(self, "aws_subnet", f"public_{i}", {
                "vpc_id": vpc_id,
                "cidr_block": cidr,
                "availability_zone": f"${{data.aws_availability_zones.available.names[{i}]}}",
                "map_public_ip_on_launch": False,  # only the load balancer and NAT live here
                "tags": name_tag(f"{name}-public-{i}", tier="public"),
            })
            for i, cidr in enumerate(public_cidrs)
        ]

        # The internet gateway serves the public subnets (load balancer) in both egress modes;
        # private subnets only get a default route through NAT when egress is "nat".
        igw = res(self, "aws_internet_gateway", "main", {"vpc_id": vpc_id, "tags": name_tag(name)})
        public_rt = res(self, "aws_route_table", "public", {"vpc_id": vpc_id, "tags": name_tag(f"{name}-public")})
        res(self, "aws_route", "public_internet", {
            "route_table_id": ref(public_rt, "id"),
            "destination_cidr_block": "0.0.0.0/0",
            "gateway_id": ref(igw, "id"),
        })
        for i, subnet in enumerate(self.public_subnets):
            res(self, "aws_route_table_association", f"public_{i}", {
                "subnet_id": ref(subnet, "id"), "route_table_id": ref(public_rt, "id"),
            })

        self.private_route_table = res(self, "aws_route_table", "private", {
            "vpc_id": vpc_id, "tags": name_tag(f"{name}-private"),
        })
        private_rt_id = ref(self.private_route_table, "id")
        for i, subnet in enumerate(self.private_subnets):
            res(self, "aws_route_table_association", f"private_{i}", {
                "subnet_id": ref(subnet, "id"), "route_table_id": private_rt_id,
            })

        self.nat = None
        if spec.egress == "nat":
            # One NAT gateway: the platform's idle cost should stay one small hub VM.
            eip = res(self, "aws_eip", "nat", {"domain": "vpc", "tags": name_tag(f"{name}-nat")})
            self.nat = res(self, "aws_nat_gateway", "main", {
                "allocation_id": ref(eip, "id"),
                "subnet_id": ref(self.public_subnets[0], "id"),
                "tags": name_tag(name),
                "depends_on": [f"aws_internet_gateway.{igw.friendly_unique_id}"],
            })
            res(self, "aws_route", "private_nat", {
                "route_table_id": private_rt_id,
                "destination_cidr_block": "0.0.0.0/0",
                "nat_gateway_id": ref(self.nat, "id"),
            })

        # S3 through a gateway endpoint in both modes: free, and keeps bucket traffic private.
        self.s3_endpoint = res(self, "aws_vpc_endpoint", "s3", {
            "vpc_id": vpc_id,
            "service_name": f"com.amazonaws.{spec.region}.s3",
            "vpc_endpoint_type": "Gateway",
            "route_table_ids": [private_rt_id],
            "tags": name_tag(f"{name}-s3"),
        })

    def interface_endpoints(self, spec: AwsSpec, security_group_id: str) -> None:
        """Interface endpoints for egress: none (called once the security groups exist)."""
        for service in INTERFACE_ENDPOINTS:
            res(self, "aws_vpc_endpoint", service, {
                "vpc_id": ref(self.vpc, "id"),
                "service_name": f"com.amazonaws.{spec.region}.{service}",
                "vpc_endpoint_type": "Interface",
                "private_dns_enabled": True,
                "subnet_ids": [ref(s, "id") for s in self.private_subnets],
                "security_group_ids": [security_group_id],
                "tags": name_tag(f"{spec.name}-{service}"),
            })
