"""Where google-cloud clients point and with which credentials, for the hub VM's stores
(deploy.vm.gcp_stores) and the operator's commands (deploy.cloud.operator_gcp).

Endpoints are Google's, unless a JSON file names others (`{"compute": url, "storage":
url, "secretmanager": url, "certs": url}`; `certs`: where identity tokens' signing
certificates are, `identity_certs_url`): /etc/graticule/google-endpoints.json on a VM, which a
test's machine simulator writes as its stand-in for Private Google Access, or the file
`GRATICULE_GOOGLE_ENDPOINTS` names on the operator's machine (tests only). On the VM the
credentials are the instance's service account, from the metadata server; elsewhere
Application Default Credentials, or none at all for a test's stand-ins.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from deploy.errors import RuntimeFailure
from deploy.runtime import env as contract

VM_ENDPOINTS = Path("/etc/graticule/google-endpoints.json")  # modules.gcp.startup_script reads it too
ENDPOINTS_VARIABLE = contract.GOOGLE_ENDPOINTS
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"  # Google's ID token signing certificates


def google_endpoints() -> dict[str, str]:
    """The stand-in endpoints by API name ({} on Google's own)."""
    given = os.environ.get(ENDPOINTS_VARIABLE)
    path = Path(given) if given else VM_ENDPOINTS
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise RuntimeFailure(f"{path} is not JSON: {exc}") from None


def _credentials(on_vm: bool, endpoints: dict[str, str]):
    if on_vm:
        from google.auth import compute_engine

        return compute_engine.Credentials()  # the metadata server's token for the instance's account
    if endpoints:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()  # a test's stand-in takes any caller
    return None  # Application Default Credentials


def client_arguments(api: str, *, on_vm: bool = False) -> dict:
    """`credentials` and `client_options` for a google-cloud client of `api` (compute, ...)."""
    endpoints = google_endpoints()
    return {"credentials": _credentials(on_vm, endpoints),
            "client_options": {"api_endpoint": endpoints[api]} if api in endpoints else None}


def secret_manager_client(*, on_vm: bool = False):
    """A Secret Manager client (REST) with `client_arguments`: the hub's secrets and the machines'."""
    from google.cloud import secretmanager

    return secretmanager.SecretManagerServiceClient(transport="rest", **client_arguments("secretmanager", on_vm=on_vm))


class SecretManagerUser:
    """A platform's secrets in a project's Secret Manager, through the client given or one
    made when first used (the `[gcp]` extra is imported only then)."""

    def __init__(self, project: str, platform: str, client: Any = None, *, on_vm: bool = True) -> None:
        self.project, self.platform = project, platform
        self._client, self._on_vm = client, on_vm

    @property
    def client(self):
        if self._client is None:
            self._client = secret_manager_client(on_vm=self._on_vm)
        return self._client


def identity_certs_url() -> str:
    """Where the certificates that sign instance identity tokens are served (PEM by key id)."""
    return google_endpoints().get("certs") or GOOGLE_CERTS_URL
