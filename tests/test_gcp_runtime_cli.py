"""`platform status` and `token` for a gcp target, through the real CLI (`logs`:
tests/test_gcp_logs_cli.py), in an operator's checkout of the platform (`gcp_operator`:
tests/support/gcp_operator.py).

The hub instance is made in the fake Compute API (tests/support/gce, checked against
Compute's discovery document) and the admin token put in the Secret Manager fake (checked
against its own), both reached by google-cloud-compute and google-cloud-secret-manager
through the endpoints file `GRATICULE_GOOGLE_ENDPOINTS` names; the hub is a REAL local
platform (JupyterHub, proxy, dask-gateway) standing in for the hub VM, reached through
`GRATICULE_CLOUD_HUB_URL` as the load balancer would be.
"""

from __future__ import annotations

import json

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from modules import naming
from tests.support.gcp_operator import LOCAL, NAME, PROJECT
from tests.support.local_platform import LocalPlatform, http, local_platform
from tests.support.procs import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> LocalPlatform:
    with local_platform(LOCAL, tmp_path_factory.mktemp("hub")) as handle:
        yield handle


def test_status_reports_the_instance_the_hub_and_the_gateway(gcp_operator, hub):
    done = gcp_operator.cli("status", "--json", hub_url=hub.hub_url)
    assert done.returncode == 0, done.stdout + done.stderr
    components = {c["name"]: c for c in json.loads(done.stdout)["components"]}
    assert list(components) == ["hub-vm", "hub", "gateway"]
    assert components["hub-vm"]["detail"] == "running"
    assert components["hub-vm"]["address"] == f"{NAME}-hub ({gcp_operator.hub_ip})"
    assert components["hub"]["up"] is True and components["gateway"]["up"] is True

    nobody = f"http://127.0.0.1:{free_port()}"  # the load balancer's path is broken
    down = gcp_operator.cli("status", "--json", hub_url=nobody)
    assert down.returncode == 1
    components = {c["name"]: c for c in json.loads(down.stdout)["components"]}
    assert components["hub-vm"]["up"] is True and components["hub"]["up"] is False

    gcp_operator.compute.power_off(f"{NAME}-hub")  # a guest shutdown: TERMINATED
    stopped = gcp_operator.cli("status", "--json", hub_url=hub.hub_url)
    assert stopped.returncode == 1
    vm = json.loads(stopped.stdout)["components"][0]
    assert vm["up"] is False and vm["detail"] == "stopped"


def test_token_comes_from_the_hub_with_the_admin_token_in_secret_manager(gcp_operator, hub):
    secret_id = naming.gcp_secret_id(NAME, "admin-api-token")
    done = gcp_operator.cli("token", "alice", hub_url=hub.hub_url)
    assert done.returncode == 1 and "has no value yet" in done.stderr and "Traceback" not in done.stderr

    # As Terraform and then the hub VM on its first boot do: the secret, then its version.
    secrets = secretmanager.SecretManagerServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": gcp_operator.secrets.url})
    secret = secrets.create_secret(parent=f"projects/{PROJECT}", secret_id=secret_id,
                                   secret={"replication": {"automatic": {}}})
    done = gcp_operator.cli("token", "alice", hub_url=hub.hub_url)
    assert done.returncode == 1 and "has no value yet" in done.stderr
    admin_token = (hub.state_dir / "secrets" / "admin_api_token").read_text().strip()
    secrets.add_secret_version(parent=secret.name, payload={"data": admin_token.encode()})

    done = gcp_operator.cli("token", "alice", hub_url=hub.hub_url)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token and token != admin_token
    assert http("GET", hub.hub_api_url + "/user", token).json()["name"] == "alice"
    refused = gcp_operator.cli("token", "mallory", hub_url=hub.hub_url)
    assert refused.returncode == 2 and "no user 'mallory'" in refused.stderr
