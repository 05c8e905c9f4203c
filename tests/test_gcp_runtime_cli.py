"""`platform status` and `token` for a gcp target, through the real CLI (`logs`:
tests/test_gcp_logs_cli.py).

The hub instance is made in the fake Compute API (tests/support/gce, checked against
Compute's discovery document) and the admin token put in the Secret Manager fake (checked
against its own), both reached by google-cloud-compute and google-cloud-secret-manager
through the endpoints file `GRATICULE_GOOGLE_ENDPOINTS` names; the hub is a REAL local
platform (JupyterHub, proxy, dask-gateway) standing in for the hub VM, reached through
`GRATICULE_CLOUD_HUB_URL` as the load balancer would be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.cloud.google_clients import ENDPOINTS_VARIABLE
from deploy.runtime import env
from modules import naming
from tests.support.gce.clients import client, wait
from tests.support.gce.server import running_fake_compute
from tests.support.gce.setup import IMAGE, network
from tests.support.gcp.secret_manager import running_secret_manager
from tests.support.local_platform import LocalPlatform, http, local_platform
from tests.support.procs import free_port

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
NAME = "gdoortest"
PROJECT = "oceanlab-prod"
ZONE = "us-central1-a"

LOCAL = f"""\
apiVersion: graticule/v1
name: {NAME}
target: local
cloud:
  gcp: {{project: {PROJECT}, region: us-central1, vpc_cidr: 10.50.0.0/16, egress: nat, state_bucket: {NAME}-tfstate}}
hub:
  auth: {{provider: local}}
  instance: {{gcp: e2-standard-2}}
  default_profile: small
  idle_timeout: 1h
groups:
  admins: {{admin: true}}
  ocean: {{profiles: [small], environments: [default]}}
users:
  - {{name: alice, groups: [admins, ocean]}}
  - {{name: bob, groups: [ocean]}}
profiles:
  small: {{cpu: 1, memory: 1GiB, instance: {{gcp: e2-standard-2}}}}
dask:
  default_profile: small
environments:
  default: {{python: "3.11", packages: ["dask[distributed]==2026.8.0"]}}
"""
GCP = LOCAL.replace("target: local", "target: gcp")


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> LocalPlatform:
    with local_platform(LOCAL, tmp_path_factory.mktemp("hub")) as handle:
        yield handle


@pytest.fixture(scope="module")
def google(tmp_path_factory):
    with running_fake_compute(PROJECT) as compute, running_secret_manager(PROJECT) as secrets:
        endpoints = tmp_path_factory.mktemp("google") / "endpoints.json"
        endpoints.write_text(json.dumps({"compute": compute.url, "secretmanager": secrets.url}))
        yield {"compute": compute, "secrets": secrets, "endpoints": endpoints}


@pytest.fixture(scope="module")
def site(tmp_path_factory, google):
    """An operator's checkout of an applied gcp platform: platform.yaml and build/outputs.json."""
    from google.cloud import compute_v1

    workdir = tmp_path_factory.mktemp("operator")
    (workdir / "platform.yaml").write_text(GCP)
    compute = google["compute"]
    subnetwork = network(compute, {"us-central1": "10.50.0.0/16"})["us-central1"]
    boot = compute_v1.AttachedDiskInitializeParams(source_image=IMAGE, disk_size_gb=10)
    wait(compute, client(compute, "InstancesClient").insert(project=PROJECT, zone=ZONE, instance_resource=(
        compute_v1.Instance(name=f"{NAME}-hub", machine_type=f"zones/{ZONE}/machineTypes/e2-standard-2",
                            disks=[compute_v1.AttachedDisk(boot=True, auto_delete=True, initialize_params=boot)],
                            network_interfaces=[compute_v1.NetworkInterface(subnetwork=subnetwork)]))))
    compute.settle()  # RUNNING
    (workdir / "build").mkdir()
    (workdir / "build" / "outputs.json").write_text(json.dumps({
        "hub_instance": f"{NAME}-hub",
        "hub_zone": ZONE,
        "hub_url": "https://hub.gdoortest.invalid",  # never reached: GRATICULE_CLOUD_HUB_URL wins
        "project": PROJECT,
    }))
    instance = client(compute, "InstancesClient").get(project=PROJECT, zone=ZONE, instance=f"{NAME}-hub")
    return {"dir": workdir, "ip": instance.network_interfaces[0].network_i_p}


def platform(site: dict, google: dict, hub_url: str, *args: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("GRATICULE_", "GOOGLE_", "JUPYTERHUB_"))}
    environment[ENDPOINTS_VARIABLE] = str(google["endpoints"])
    environment[env.CLOUD_HUB_URL] = hub_url
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "deploy.cli.main", *args], cwd=site["dir"], env=environment,
                          capture_output=True, text=True, timeout=300)


def test_status_reports_the_instance_the_hub_and_the_gateway(site, google, hub):
    done = platform(site, google, hub.hub_url, "status", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    components = {c["name"]: c for c in json.loads(done.stdout)["components"]}
    assert list(components) == ["hub-vm", "hub", "gateway"]
    assert components["hub-vm"]["detail"] == "running"
    assert components["hub-vm"]["address"] == f"{NAME}-hub ({site['ip']})"
    assert components["hub"]["up"] is True and components["gateway"]["up"] is True

    nobody = f"http://127.0.0.1:{free_port()}"  # the load balancer's path is broken
    down = platform(site, google, nobody, "status", "--json")
    assert down.returncode == 1
    components = {c["name"]: c for c in json.loads(down.stdout)["components"]}
    assert components["hub-vm"]["up"] is True and components["hub"]["up"] is False

    google["compute"].power_off(f"{NAME}-hub")  # a guest shutdown: TERMINATED
    stopped = platform(site, google, hub.hub_url, "status", "--json")
    assert stopped.returncode == 1
    vm = json.loads(stopped.stdout)["components"][0]
    assert vm["up"] is False and vm["detail"] == "stopped"


def test_token_comes_from_the_hub_with_the_admin_token_in_secret_manager(site, google, hub):
    secret_id = naming.gcp_secret_id(NAME, "admin-api-token")
    done = platform(site, google, hub.hub_url, "token", "alice")
    assert done.returncode == 1 and "has no value yet" in done.stderr and "Traceback" not in done.stderr

    # As Terraform and then the hub VM on its first boot do: the secret, then its version.
    secrets = secretmanager.SecretManagerServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": google["secrets"].url})
    secret = secrets.create_secret(parent=f"projects/{PROJECT}", secret_id=secret_id,
                                   secret={"replication": {"automatic": {}}})
    done = platform(site, google, hub.hub_url, "token", "alice")
    assert done.returncode == 1 and "has no value yet" in done.stderr
    admin_token = (hub.state_dir / "secrets" / "admin_api_token").read_text().strip()
    secrets.add_secret_version(parent=secret.name, payload={"data": admin_token.encode()})

    done = platform(site, google, hub.hub_url, "token", "alice")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token and token != admin_token
    assert http("GET", hub.hub_api_url + "/user", token).json()["name"] == "alice"
    refused = platform(site, google, hub.hub_url, "token", "mallory")
    assert refused.returncode == 2 and "no user 'mallory'" in refused.stderr
