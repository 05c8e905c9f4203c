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

Secrets Manager takes a resource policy of at most `POLICY_MAX_CHARS` characters, so one
secret names at most `per_secret` instances (`capacity`: 449 with EC2's longest ids). A
bigger cluster reads its secret from shards, copies under `shard_key(key, 1)`,
`shard_key(key, 2)`, ... each naming its own machines (`deploy.gateway.secret_shards`
assigns them); `delete_shards` deletes them all; `all_keys` lists what is left, for teardown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from deploy.cloud.aws_clients import new_client
from deploy.cloud.machines import TAG_PLATFORM, MachinesError
from modules import naming

READ = "secretsmanager:GetSecretValue"
# PutResourcePolicy's ResourcePolicy is 1..20480 characters (the Secrets Manager API reference;
# botocore's model: NonEmptyResourcePolicyType max 20480). botocore does not check the maximum.
POLICY_MAX_CHARS = 20480
LONGEST_INSTANCE_ID = "i-" + "f" * 17  # EC2's ids: "i-" and 8 (older) or 17 hex digits


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


def policy_text(platform: str, instance_ids: Sequence[str]) -> str:
    """The policy as sent: compact JSON (AWS counts every character, whitespace included)."""
    return json.dumps(policy(platform, instance_ids), sort_keys=True, separators=(",", ":"))


@lru_cache
def capacity(platform: str) -> int:
    """The most instances one secret's policy can name: with EC2's longest ids, the policy
    stays within POLICY_MAX_CHARS."""
    def fits(count: int) -> bool:
        ids = [f"{LONGEST_INSTANCE_ID[:-6]}{n:06x}" for n in range(count)]
        return len(policy_text(platform, ids)) <= POLICY_MAX_CHARS
    low, high = 0, POLICY_MAX_CHARS  # fits(low); not fits(high): every id costs characters
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def shard_key(key: str, index: int) -> str:
    """The key of a secret's shard `index` (0: the secret itself)."""
    return key if index == 0 else f"{key}-s{index}"


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

    @property
    def per_secret(self) -> int:
        """How many instances one secret (one shard) can be read by."""
        return capacity(self.platform)

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
        except MachinesError:
            raise
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

    def all_keys(self) -> list[str]:
        """Every machine secret's key of the platform (ListSecrets: the operator's, not the hub's)."""
        prefix = self.name("")
        try:
            pages = self.client.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": [prefix]}])
            names = [secret["Name"] for page in pages for secret in page["SecretList"]]
        except Exception as exc:
            raise _failure("list", prefix + "*", exc) from None
        return sorted(name[len(prefix):] for name in names if name.startswith(prefix))

    def delete_shards(self, key: str) -> list[str]:
        """Delete the secret and every shard of it (the keys deleted). Shards are made in
        order, so they are found by counting up to the first missing one; deleted from the
        last down, so that an interrupted deletion leaves them in order for the next."""
        client, count = self.client, 1
        try:
            while True:
                client.describe_secret(SecretId=self.name(shard_key(key, count)))
                count += 1
        except client.exceptions.ResourceNotFoundException:
            pass
        except Exception as exc:
            raise _failure("describe", self.name(shard_key(key, count)), exc) from None
        keys = [shard_key(key, index) for index in reversed(range(count))]
        for each in keys:
            self.delete(each)
        return keys

    def _set_policy(self, name: str, instance_ids: Sequence[str]) -> None:
        document = policy_text(self.platform, instance_ids)
        if len(document) > POLICY_MAX_CHARS:
            raise MachinesError(
                f"the resource policy for {len(set(instance_ids))} instances is {len(document)} characters, "
                f"over Secrets Manager's {POLICY_MAX_CHARS}: one secret holds at most "
                f"{capacity(self.platform)} instances (shard it)")
        self.client.put_resource_policy(SecretId=name, ResourcePolicy=document, BlockPublicPolicy=True)


def _failure(what: str, name: str, exc: Exception) -> MachinesError:
    return MachinesError(f"aws secretsmanager: {what} {name} failed: {exc}")
