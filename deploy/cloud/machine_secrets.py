"""Secrets of launched machines in AWS Secrets Manager: a cluster's TLS credentials and API
token, a notebook server's token; never in user data.

One secret per key (`cluster-<name>`, `server-<user>-<server>`), named
`graticule/<platform>/machines/<key>`, encrypted with the platform's KMS key and tagged.
Its JSON is what `deploy.vm.machine_boot` reads on the machine: `{"env": {...}, "files":
{path: content}}`. A resource policy denies `GetSecretValue` to every caller but the hub's
role and the instances `allow` names (`ec2:SourceInstanceARN`, which AWS sets on an
instance role's credentials): the machines' role may read `machines/*`, the policy narrows
that to this secret's own machines. It is put before the launch (policy: the hub only) and
rewritten by `allow` right after, which is why the machine retries while denied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from deploy.cloud.aws_clients import new_client
from deploy.cloud.machines import TAG_PLATFORM, MachinesError
from modules import naming

READ = "secretsmanager:GetSecretValue"


def policy(platform: str, instance_ids: Sequence[str]) -> dict:
    """The resource policy: nobody but the hub's role and these instances reads the secret."""
    readers = {"aws:PrincipalArn": f"arn:*:iam::*:role/{naming.hub_role_name(platform)}"}
    if instance_ids:
        readers["ec2:SourceInstanceARN"] = [f"arn:*:ec2:*:*:instance/{i}" for i in sorted(set(instance_ids))]
    statement: dict[str, Any] = {
        "Sid": "OnlyItsMachinesAndTheHub",
        "Effect": "Deny",
        "Principal": "*",
        "Action": READ,
        "Resource": "*",
        # Keys under one operator are ANDed: denied unless the caller is the hub role or one of
        # the instances (a missing ec2:SourceInstanceARN does not match, so it is denied).
        "Condition": {"ArnNotLike": readers},
    }
    return {"Version": "2012-10-17", "Statement": [statement]}


class MachineSecrets:
    def __init__(self, region: str, platform: str, endpoint_url: str | None = None, client: Any = None) -> None:
        self.region, self.platform, self.endpoint_url = region, platform, endpoint_url
        self._client = client

    @property
    def client(self):
        if self._client is None:
            self._client = new_client("secretsmanager", self.region, self.endpoint_url)
        return self._client

    def name(self, key: str) -> str:
        return naming.machine_secret_name(self.platform, key)

    def put(self, key: str, values: Mapping[str, str], tags: Mapping[str, str] | None = None) -> str:
        """Create (or overwrite) the secret; readable by the hub only until `allow`."""
        name, text = self.name(key), json.dumps(dict(values), sort_keys=True)
        all_tags = [{"Key": k, "Value": v} for k, v in {TAG_PLATFORM: self.platform, **(tags or {})}.items()]
        client = self.client
        try:
            try:
                client.create_secret(Name=name, SecretString=text, KmsKeyId=naming.kms_key_alias(self.platform),
                                     Description=f"graticule {self.platform}: machine secret {key}", Tags=all_tags)
            except client.exceptions.ResourceExistsException:
                client.put_secret_value(SecretId=name, SecretString=text)
            self._set_policy(name, [])
        except Exception as exc:  # botocore's errors: the message names the call
            raise _failure("put", name, exc) from None
        return name

    def allow(self, key: str, instance_ids: Sequence[str]) -> None:
        """Only these instances (and the hub) may read the secret from now on."""
        name = self.name(key)
        try:
            self._set_policy(name, instance_ids)
        except Exception as exc:
            raise _failure("allow", name, exc) from None

    def delete(self, key: str) -> None:
        name, client = self.name(key), self.client
        try:
            client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        except client.exceptions.ResourceNotFoundException:
            pass  # deleted already: idempotent
        except Exception as exc:
            raise _failure("delete", name, exc) from None

    def _set_policy(self, name: str, instance_ids: Sequence[str]) -> None:
        document = json.dumps(policy(self.platform, instance_ids), sort_keys=True)
        self.client.put_resource_policy(SecretId=name, ResourcePolicy=document, BlockPublicPolicy=True)


def _failure(what: str, name: str, exc: Exception) -> MachinesError:
    return MachinesError(f"aws secretsmanager: {what} {name} failed: {exc}")
