"""CloudWatch log groups (platform services, VPC flow logs) and the VPC flow log."""

from __future__ import annotations

from constructs import Construct

from modules.aws.base import data, name_tag, ref, res
from modules.aws.spec import AwsSpec


class Logging(Construct):
    def __init__(self, scope: Construct, spec: AwsSpec, vpc_id: str, key_arn: str) -> None:
        super().__init__(scope, "logging")
        self.group = res(self, "aws_cloudwatch_log_group", "platform", {
            "name": f"/graticule/{spec.name}",
            "retention_in_days": spec.log_retention_days,
            "kms_key_id": key_arn,
            "tags": name_tag(f"{spec.name}-platform"),
        })
        flow_group = res(self, "aws_cloudwatch_log_group", "flow", {
            "name": f"/graticule/{spec.name}/vpc-flow",
            "retention_in_days": spec.log_retention_days,
            "kms_key_id": key_arn,
            "tags": name_tag(f"{spec.name}-vpc-flow"),
        })
        self.group_arn = ref(self.group, "arn")

        trust = data(self, "aws_iam_policy_document", "flow_logs_trust", {
            "statement": [{
                "actions": ["sts:AssumeRole"],
                "principals": [{"type": "Service", "identifiers": ["vpc-flow-logs.amazonaws.com"]}],
                "condition": [{"test": "StringEquals", "variable": "aws:SourceAccount", "values": [spec.account_id]}],
            }],
        })
        write = data(self, "aws_iam_policy_document", "flow_logs_write", {
            "statement": [{
                "actions": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "resources": [f"{ref(flow_group, 'arn')}:*"],
            }],
        })
        role = res(self, "aws_iam_role", "flow_logs", {
            "name": f"{spec.name}-vpc-flow-logs",
            "assume_role_policy": ref(trust, "json"),
            "tags": name_tag(f"{spec.name}-vpc-flow-logs"),
        })
        res(self, "aws_iam_role_policy", "flow_logs", {
            "name": "write-flow-logs",
            "role": ref(role, "id"),
            "policy": ref(write, "json"),
        })
        res(self, "aws_flow_log", "vpc", {
            "vpc_id": vpc_id,
            "traffic_type": "ALL",
            "log_destination_type": "cloud-watch-logs",
            "log_destination": ref(flow_group, "arn"),
            "iam_role_arn": ref(role, "arn"),
            "max_aggregation_interval": 60,
            "tags": name_tag(f"{spec.name}-vpc"),
        })
