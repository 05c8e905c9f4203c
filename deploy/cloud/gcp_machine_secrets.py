"""Secrets of launched machines on GCP, in Secret Manager: a cluster's TLS credentials and API
token, a notebook server's token; never in a startup script.

The same methods as AWS's `deploy.cloud.machine_secrets.MachineSecrets` (`put`, `allow`,
`delete`), with another guard. GCP has no IAM condition naming the instance that calls
(AWS's `ec2:SourceInstanceARN`): every machine runs as a worker service account, so a grant
on a secret would let bob's workers read alice's cluster credentials. Instead (HashiCorp
Vault's GCP auth method) only the hub's service account may access these secrets, and the
hub's broker (`deploy.gateway.machine_secret_broker`) hands a secret to a machine that
proves, with its instance identity token, that it is an instance whose labels name the
secret's owner (`OWNER_LABELS`: its cluster, or its notebook server). Labels are the hub's
to set: it launches the machines, and no machine's account may set labels (modules.gcp.identity).

One secret per key, id `graticule-<platform>-machines-<key>` (`naming.gcp_machine_secret_id`),
labelled platform/cluster (or server)/user as its machines are; its value (latest version)
is the JSON the machine applies, `{"env": {...}, "files": {path: content}}`. Nothing lists
the machines on the secret (an earlier annotation did, and Secret Manager's 16 KiB of
annotations capped a cluster near 300 machines): `allow` has nothing to do on GCP.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deploy.cloud import gcp_placement
from deploy.cloud.google_clients import SecretManagerUser
from deploy.cloud.machines import TAG_CLUSTER, TAG_PLATFORM, TAG_SERVER, MachinesError
from modules import naming

OWNER_LABELS = (TAG_CLUSTER, TAG_SERVER)  # what a machine's labels must share with its secret's


@dataclass(frozen=True)
class MachineSecret:
    values: dict  # {"env": ..., "files": ...}
    labels: dict[str, str]  # as GCE labels: platform, cluster or server, user

    @property
    def owner(self) -> dict[str, str]:
        """The labels a machine must carry to read it: platform and cluster (or server); {} for none."""
        owners = {key: value for key, value in self.labels.items() if key in OWNER_LABELS}
        return {TAG_PLATFORM: self.labels.get(TAG_PLATFORM, ""), **owners} if owners else {}


class GcpMachineSecrets(SecretManagerUser):
    def name(self, key: str) -> str:
        return f"projects/{self.project}/secrets/{naming.gcp_machine_secret_id(self.platform, key)}"

    def put(self, key: str, values: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> str:
        """Create the secret (or give it a new value); the machines labelled as it may read it.

        The hub may not update secrets (modules.gcp.identity): one that exists with other
        labels is deleted and created again, so its labels are never changed in place."""
        from google.api_core.exceptions import Conflict  # ALREADY_EXISTS (REST maps 409 to Conflict)

        name, data = self.name(key), json.dumps(dict(values), sort_keys=True).encode()
        labels = gcp_placement.labels({TAG_PLATFORM: self.platform, **(tags or {})})
        with _failing("put", name):
            try:
                self._create(name, labels)
            except Conflict:
                if dict(self.client.get_secret(name=name).labels) != labels:
                    self.client.delete_secret(name=name)
                    self._create(name, labels)
            self.client.add_secret_version(parent=name, payload={"data": data})
        return name

    def _create(self, name: str, labels: dict[str, str]) -> None:
        self.client.create_secret(parent=f"projects/{self.project}", secret_id=name.rsplit("/", 1)[1],
                                  secret={"replication": {"automatic": {}}, "labels": labels})

    def allow(self, key: str, instance_ids: Sequence[str]) -> None:
        """Nothing to do: the broker asks Compute for the machine's labels (the VM backend calls it
        for every cloud; AWS's writes a resource policy)."""

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        name = self.name(key)
        with _failing("delete", name), contextlib.suppress(NotFound):  # deleted already: idempotent
            self.client.delete_secret(name=name)

    def read(self, key: str) -> MachineSecret | None:
        """The value and the labels (None: no such secret, or no value yet); the broker's."""
        from google.api_core.exceptions import FailedPrecondition, NotFound

        name = self.name(key)
        with _failing("read", name):
            try:
                secret = self.client.get_secret(name=name)
                answer = self.client.access_secret_version(name=f"{name}/versions/latest")
            except (NotFound, FailedPrecondition):
                return None
        return MachineSecret(json.loads(answer.payload.data), dict(secret.labels))


class _failing:
    """Google's errors as a MachinesError naming the call (AlreadyExists/NotFound pass through
    to the caller's own handling inside)."""

    def __init__(self, what: str, name: str) -> None:
        self.what, self.name = what, name

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        from google.api_core.exceptions import GoogleAPIError
        from google.auth.exceptions import GoogleAuthError

        if error is not None and isinstance(error, (GoogleAPIError, GoogleAuthError, OSError)):
            raise MachinesError(f"gcp secretmanager: {self.what} {self.name} failed: {error}") from None
        return False
