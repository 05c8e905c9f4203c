"""The GCP side of deploy.vm.stores: the artifacts bucket through google-cloud-storage, the
platform's secrets through google-cloud-secret-manager (REST transport), both imported
when first used (the `[gcp]` extra). Endpoints and credentials: deploy.cloud.google_clients.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.cloud.google_clients import SecretManagerUser, client_arguments, google_endpoints
from deploy.vm.stores import StoreError
from modules import naming


def storage_client(project: str | None, *, on_vm: bool = False):
    from google.cloud import storage

    if not google_endpoints() and os.environ.get("STORAGE_EMULATOR_HOST"):
        return storage.Client(project=project)  # the library's own emulator switch
    return storage.Client(project=project, **client_arguments("storage", on_vm=on_vm))


@contextmanager
def _failing(what: str) -> Iterator[None]:
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    try:
        yield
    except (GoogleAPIError, GoogleAuthError, OSError) as exc:  # requests' errors are OSErrors
        raise StoreError(f"{what} failed: {exc}") from None


class GcsObjects:
    def __init__(self, bucket: str, *, project: str | None = None, client=None, on_vm: bool = True) -> None:
        self.bucket_name, self.url = bucket, f"gs://{bucket}"
        self._project, self._client, self._on_vm = project, client, on_vm

    @property
    def client(self):
        if self._client is None:
            self._client = storage_client(self._project, on_vm=self._on_vm)
        return self._client

    def _blob(self, key: str):
        return self.client.bucket(self.bucket_name).blob(key)

    def get(self, key: str) -> bytes:
        with _failing(f"reading {key} in {self.url}"):
            return self._blob(key).download_as_bytes()

    def keys(self, prefix: str) -> list[str]:
        with _failing(f"listing {prefix} in {self.url}"):
            return [blob.name for blob in self.client.list_blobs(self.bucket_name, prefix=prefix)]

    def exists(self, key: str) -> bool:
        with _failing(f"looking for {key} in {self.url}"):
            return self._blob(key).exists()

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        with _failing(f"writing {key} to {self.url}"):
            self._blob(key).upload_from_string(data, content_type=content_type or "application/octet-stream")

    def put_file(self, key: str, path: Path) -> None:
        """Created once (ifGenerationMatch=0): an object already there is the same file, put
        by another publisher of the same key, and is kept. The hub may not replace objects
        under environments/: Cloud Storage answers 412 (the precondition) or 403 (replacing
        needs storage.objects.delete), so a refusal of a name that exists is done too."""
        from google.api_core.exceptions import Forbidden, PreconditionFailed

        with _failing(f"uploading {key} to {self.url}"):
            try:
                self._blob(key).upload_from_filename(str(path), if_generation_match=0)
            except PreconditionFailed:
                return
            except Forbidden:
                if not self._blob(key).exists():
                    raise


class GcpSecrets(SecretManagerUser):
    """Secret Manager: `projects/<project>/secrets/graticule-<platform>-<key>`; a value is
    the latest version."""

    def name(self, key: str) -> str:
        return f"projects/{self.project}/secrets/{naming.gcp_secret_id(self.platform, key)}"

    def value(self, key: str) -> str | None:
        from google.api_core.exceptions import FailedPrecondition, NotFound

        with _failing(f"reading the secret {self.name(key)}"):
            try:
                answer = self.client.access_secret_version(name=f"{self.name(key)}/versions/latest")
            except (NotFound, FailedPrecondition):  # no version yet (or only disabled ones)
                return None
            return answer.payload.data.decode()

    def add(self, key: str, value: str) -> None:
        with _failing(f"adding a version to the secret {self.name(key)}"):
            self.client.add_secret_version(parent=self.name(key), payload={"data": value.encode()})
