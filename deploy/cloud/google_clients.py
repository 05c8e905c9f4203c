"""With which credentials and at which endpoint a google-cloud client is made, for the hub
VM's stores (deploy.vm.gcp_stores) and the operator's commands (deploy.cloud.operator_gcp).

The endpoint is Google's unless deploy.cloud.gcp_endpoints names a stand-in (a test's
simulated VM, or `GRATICULE_GOOGLE_ENDPOINTS` on the operator's machine). On the VM the
credentials are the instance's service account, from the metadata server; elsewhere
Application Default Credentials, or none at all for a test's stand-in.
"""

from __future__ import annotations

from deploy.cloud.gcp_endpoints import google_endpoint


def _credentials(on_vm: bool, stand_in: bool):
    if on_vm:
        from google.auth import compute_engine

        return compute_engine.Credentials()  # the metadata server's token for the instance's account
    if stand_in:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()  # a test's stand-in takes any caller
    return None  # Application Default Credentials


def client_arguments(api: str, *, on_vm: bool = False) -> dict:
    """`credentials` and `client_options` for a google-cloud client of `api` (compute, ...)."""
    endpoint = google_endpoint(api)
    return {"credentials": _credentials(on_vm, endpoint is not None),
            "client_options": {"api_endpoint": endpoint} if endpoint else None}
