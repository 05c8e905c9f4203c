"""The hub VM's two cloud stores behind one small seam, so boot, config sync and publish
run alike on both clouds: the artifacts bucket (`ObjectStore`: S3 or Cloud Storage) and
the platform's secrets (`SecretStore`: Secrets Manager or Secret Manager). Each
adapter turns its library's errors into `StoreError`; the GCP adapters are in
deploy.vm.gcp_stores. The cloud is `cloud` in /etc/graticule/vm.json (aws when absent).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from modules import naming


class StoreError(RuntimeError):
    """A call to the object or secret store failed (the message names the store)."""


class ObjectStore(Protocol):
    url: str  # s3://bucket or gs://bucket, for messages

    def get(self, key: str) -> bytes: ...

    def keys(self, prefix: str) -> list[str]: ...

    def exists(self, key: str) -> bool: ...

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None: ...

    def put_file(self, key: str, path: Path) -> None:
        """A file under a content-addressed key (wheels: the same key, the same bytes), so two
        publishers may put it at once: the second may keep the first one's object."""


class SecretStore(Protocol):
    def name(self, key: str) -> str: ...

    def value(self, key: str) -> str | None:
        """The secret's current value; None when it has none yet (or does not exist)."""

    def add(self, key: str, value: str) -> None:
        """Give the secret a (new) value."""


class S3Objects:
    def __init__(self, s3, bucket: str) -> None:
        self.s3, self.bucket, self.url = s3, bucket, f"s3://{bucket}"

    @contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"{what} in {self.url} failed: {exc}") from None

    def get(self, key: str) -> bytes:
        with self._failing(f"reading {key}"):
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def keys(self, prefix: str) -> list[str]:
        with self._failing(f"listing {prefix}"):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        with self._failing(f"looking for {key}"):
            try:
                self.s3.head_object(Bucket=self.bucket, Key=key)
                return True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        with self._failing(f"writing {key}"):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)

    def put_file(self, key: str, path: Path) -> None:
        # PutObject replaces, and the hub's s3:PutObject may: a second publisher rewrites the same bytes
        with self._failing(f"uploading {key}"):
            self.s3.upload_file(str(path), self.bucket, key)


class AwsSecrets:
    """Secrets Manager: `graticule/<platform>/<key>`."""

    def __init__(self, client, platform: str) -> None:
        self.client, self.platform = client, platform

    def name(self, key: str) -> str:
        return naming.secret_name(self.platform, key)

    def value(self, key: str) -> str | None:
        try:
            return self.client.get_secret_value(SecretId=self.name(key))["SecretString"]
        except self.client.exceptions.ResourceNotFoundException:
            return None  # the secret has no value yet (or does not exist)

    def add(self, key: str, value: str) -> None:
        self.client.put_secret_value(SecretId=self.name(key), SecretString=value)


def object_store(settings) -> ObjectStore:
    """The artifacts bucket of the VM's settings (deploy.vm.settings.VmSettings)."""
    if settings.cloud == "gcp":
        from deploy.vm.gcp_stores import GcsObjects

        return GcsObjects(settings.bucket, project=settings.project)
    return S3Objects(settings.client("s3"), settings.bucket)


def secret_store(settings) -> SecretStore:
    if settings.cloud == "gcp":
        from deploy.vm.gcp_stores import GcpSecrets

        return GcpSecrets(settings.project, settings.platform)
    return AwsSecrets(settings.client("secretsmanager"), settings.platform)


def operator_store(cloud: str, bucket: str, *, region: str = "", project: str = "") -> ObjectStore:
    """The artifacts bucket Terraform made, with the operator's credentials (`platform apply`)."""
    if cloud == "gcp":
        from deploy.vm.gcp_stores import GcsObjects

        return GcsObjects(bucket, project=project, on_vm=False)
    import boto3  # its usual credential chain; AWS_ENDPOINT_URL is honoured

    return S3Objects(boto3.client("s3", region_name=region), bucket)
