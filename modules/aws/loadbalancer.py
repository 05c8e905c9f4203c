"""The front door: the only things on the internet are two load balancers.

- An application load balancer for the hub: HTTPS 443 to the hub proxy's HUB_PORT, and
  HTTP 80 answered with a 301 to HTTPS (it never forwards plain HTTP).
- A network load balancer for Dask: TCP SCHEDULER_PORT to the same port on the hub VM,
  where dask-gateway's scheduler proxy routes each TLS connection by its SNI. Dask's TLS
  is end to end (client to scheduler, with the cluster's own certificate), so it cannot
  go through an ALB or be terminated at the load balancer: the bytes pass untouched.
  Its address is the NLB's DNS name, also with a domain: `hub.domain` names the ALB, one
  name cannot point at both, and Dask's TLS checks the cluster's certificate, not the
  host name.

With `hub.domain` the certificate comes from ACM (DNS validation: apply waits until the
records in the `certificate_validation_records` output exist); without one, the operator
passes an existing certificate as the `certificate_arn` variable.
"""

from __future__ import annotations

from cdktf import TerraformVariable
from constructs import Construct

from modules.aws.base import name_tag, ref, res
from modules.aws.spec import HUB_PORT, AwsSpec
from modules.spec import SCHEDULER_PORT

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


class LoadBalancer(Construct):
    def __init__(self, scope: Construct, spec: AwsSpec, *, subnet_ids: list[str], security_group_id: str,
                 vpc_id: str, hub_instance_id: str) -> None:
        super().__init__(scope, "loadbalancer")
        self.certificate = None
        if spec.domain:
            self.certificate = res(self, "aws_acm_certificate", "hub", {
                "domain_name": spec.domain,
                "validation_method": "DNS",
                "tags": name_tag(spec.domain),
                "lifecycle": {"create_before_destroy": True},
            })
            validated = res(self, "aws_acm_certificate_validation", "hub", {
                "certificate_arn": ref(self.certificate, "arn"),
            })
            certificate_arn = ref(validated, "certificate_arn")
        else:
            variable = TerraformVariable(self, "certificate_arn", type="string",
                                         description="ACM certificate for the hub's HTTPS listener")
            variable.override_logical_id("certificate_arn")
            certificate_arn = variable.string_value

        short = f"{spec.name[:28]}-hub"  # load balancer and target group names: 32 characters
        self.lb = res(self, "aws_lb", "hub", {
            "name": short,
            "load_balancer_type": "application",
            "internal": False,
            "subnets": subnet_ids,
            "security_groups": [security_group_id],
            "drop_invalid_header_fields": True,
            "tags": name_tag(f"{spec.name}-hub"),
        })
        target = res(self, "aws_lb_target_group", "hub", {
            "name": short,
            "port": HUB_PORT,
            "protocol": "HTTP",
            "vpc_id": vpc_id,
            "target_type": "instance",
            "health_check": {"path": "/hub/health", "matcher": "200", "interval": 30},
            "tags": name_tag(f"{spec.name}-hub"),
        })
        res(self, "aws_lb_target_group_attachment", "hub", {
            "target_group_arn": ref(target, "arn"),
            "target_id": hub_instance_id,
            "port": HUB_PORT,
        })
        res(self, "aws_lb_listener", "https", {
            "load_balancer_arn": ref(self.lb, "arn"),
            "port": 443,
            "protocol": "HTTPS",
            "ssl_policy": TLS_POLICY,
            "certificate_arn": certificate_arn,
            "default_action": [{"type": "forward", "target_group_arn": ref(target, "arn")}],
            "tags": name_tag(f"{spec.name}-https"),
        })
        res(self, "aws_lb_listener", "http", {
            "load_balancer_arn": ref(self.lb, "arn"),
            "port": 80,
            "protocol": "HTTP",
            "default_action": [{"type": "redirect", "redirect": {
                "port": "443", "protocol": "HTTPS", "status_code": "HTTP_301",
            }}],
            "tags": name_tag(f"{spec.name}-http"),
        })
        self.scheduler = self._scheduler(spec, subnet_ids, security_group_id, vpc_id, hub_instance_id)

    def _scheduler(self, spec: AwsSpec, subnet_ids: list[str], security_group_id: str, vpc_id: str,
                   hub_instance_id: str):
        """The NLB passing Dask's TLS through to the gateway's scheduler proxy."""
        short = f"{spec.name[:26]}-dask"
        balancer = res(self, "aws_lb", "scheduler", {
            "name": short,
            "load_balancer_type": "network",
            "internal": False,
            "subnets": subnet_ids,
            # NLBs take security groups (only when created): the same group as the ALB, so
            # the hub's SCHEDULER_PORT admits the load balancers and nothing else. A target
            # rule naming the NLB's group admits its traffic even with client IP
            # preservation (on by default for instance targets), as AWS documents.
            "security_groups": [security_group_id],
            "enable_cross_zone_load_balancing": True,
            "tags": name_tag(f"{spec.name}-dask"),
        })
        target = res(self, "aws_lb_target_group", "scheduler", {
            "name": short,
            "port": SCHEDULER_PORT,
            "protocol": "TCP",
            "vpc_id": vpc_id,
            "target_type": "instance",
            "health_check": {"protocol": "TCP", "port": "traffic-port", "interval": 30},
            "tags": name_tag(f"{spec.name}-dask"),
        })
        res(self, "aws_lb_target_group_attachment", "scheduler", {
            "target_group_arn": ref(target, "arn"),
            "target_id": hub_instance_id,
            "port": SCHEDULER_PORT,
        })
        res(self, "aws_lb_listener", "scheduler", {
            "load_balancer_arn": ref(balancer, "arn"),
            "port": SCHEDULER_PORT,
            "protocol": "TCP",
            "default_action": [{"type": "forward", "target_group_arn": ref(target, "arn")}],
            "tags": name_tag(f"{spec.name}-dask"),
        })
        return balancer
