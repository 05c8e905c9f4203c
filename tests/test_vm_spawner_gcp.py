"""The VM spawner on gcp, and `platform destroy --machines-only` there, against the fake
Compute API and the Secret Manager fake (no Google emulator exists; both fakes validate
every request against Google's discovery documents): one instance per server, from the
profile's rendered instance template, labelled, with the notebooks' network tag, as the
user's worker service account, its home disk attached at creation in the disk's zone; the
server's token only in its machine secret (allowed to that instance alone), never in the
startup script; stop deletes the instance and the secret and keeps the disk, which the next
server gets again. Instances do not boot here (tests/test_gcp_notebook_e2e.py boots them
in the GCE simulator); the JupyterHub side of the spawner is driven directly.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.cloud.deadman import MACHINE_USER_DATA
from deploy.cloud.gcp_home_disks import HOME_DEVICE
from deploy.cloud.gcp_machine_secrets import GcpMachineSecrets
from deploy.cloud.google_clients import ENDPOINTS_VARIABLE
from deploy.hub.vm_spawner import VMSpawner
from modules import naming
from render.build import render
from render.hub_config import hub_data
from render.validate import validate_text
from tests.conftest import REPO
from tests.support.gce.rendered import Rendered
from tests.support.gce.server import running_fake_compute
from tests.support.gcp import compute_disks
from tests.support.gcp.secret_manager import running_secret_manager
from tests.support.gcp_hub import PROJECT, platform_yaml

PLATFORM = "oceanlab"
TOKEN = "hub-api-token-of-alice-0123456789"
HUB_IP = "10.10.0.2"
ACCOUNTS = {"alice": f"oceanlab-w-rw@{PROJECT}.iam.gserviceaccount.com",
            "bob": f"oceanlab-w-ro@{PROJECT}.iam.gserviceaccount.com"}


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A gcp platform's published build, its rendered network and templates in the fake."""
    text = platform_yaml()
    build = render(validate_text(text))
    main = json.loads(build["terraform/gcp/main.tf.json"])
    with running_fake_compute(PROJECT) as compute, running_secret_manager(PROJECT) as secret_manager:
        Rendered(compute, main).create()
        endpoints = tmp_path / "google-endpoints.json"
        endpoints.write_text(json.dumps({"compute": compute.url, "secretmanager": secret_manager.url}))
        monkeypatch.setenv(ENDPOINTS_VARIABLE, str(endpoints))
        for path, data in build.items():
            if path.startswith(("workers/", "environments/")):
                (tmp_path / "build" / path).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / "build" / path).write_bytes(data)
        outputs = tmp_path / "build" / "outputs.json"
        outputs.write_text(json.dumps({"hub_private_ip": HUB_IP, "artifacts_bucket": "oceanlab-artifacts",
                                       "project": PROJECT, "worker_service_account_by_user": ACCOUNTS}))
        (tmp_path / "platform.yaml").write_text(text)
        secrets = secretmanager.SecretManagerServiceClient(
            credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": secret_manager.url})
        yield SimpleNamespace(root=tmp_path, data=hub_data(validate_text(text), "gcp"), compute=compute,
                              secret_manager=secret_manager, secrets=secrets, endpoints=endpoints,
                              workers=tmp_path / "build" / "workers", outputs=outputs)


def _spawner(site, user: str = "alice", **options) -> VMSpawner:
    data = site.data
    spawner = VMSpawner(
        user=SimpleNamespace(name=user, escaped_name=user, url=f"/user/{user}/"),
        hub=SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api", base_url="/hub/"),
        profiles=data["profiles"], environments=data["environments"],
        entitlements={name: {k: u[k] for k in ("profiles", "environments", "default_profile")}
                      for name, u in data["users"].items()},
        budgets={name: u["budget"] for name, u in data["users"].items() if u["budget"]},
        platform_name=PLATFORM, cloud="gcp", templates_dir=str(site.workers), outputs_file=str(site.outputs),
        poll_every=0.05, attach_timeout=30,
    )
    spawner.api_token = TOKEN
    spawner.user_options = options
    return spawner


def _instance(site, name: str) -> dict:
    (found,) = [i for i in site.compute.instances() if i["name"] == name]
    return found


def _startup_script(raw: dict) -> str:
    """The startup script with the machine's own script out of the dead-man switch's wrapper."""
    whole = {i["key"]: i["value"] for i in raw["metadata"]["items"]}["startup-script"]
    (carried,) = [line.split()[1] for line in whole.splitlines() if line.endswith(f"base64 -d > {MACHINE_USER_DATA}")]
    return whole + base64.b64decode(carried).decode()


def _secret(site, key: str):
    return site.secrets.get_secret(name=f"projects/{PROJECT}/secrets/{naming.gcp_machine_secret_id(PLATFORM, key)}")


def test_a_server_on_its_own_instance_with_its_home_disk_and_a_secret_only_it_may_have(site):
    spawner = _spawner(site)
    ip, port = asyncio.run(spawner.start())
    raw = _instance(site, spawner.machine_id)
    assert ip == raw["networkInterfaces"][0]["networkIP"] and port == 8888
    assert raw["labels"] == {"profile": "small", "managed-by": "graticule", "platform": PLATFORM, "role": "notebook",
                             "user": "alice", "budget": raw["labels"]["budget"], "server": "alice"}
    assert raw["labels"]["budget"] == site.data["users"]["alice"]["budget"]
    (insert,) = site.compute.calls("compute.instances.insert")
    assert insert["query"]["sourceInstanceTemplate"][0].endswith("/instanceTemplates/oceanlab-small")
    assert raw["tags"]["items"] == ["oceanlab-notebook"]  # not the workers' tag: only the hub's proxy reaches it
    assert raw["serviceAccounts"][0]["email"] == ACCOUNTS["alice"]  # her bucket grants, no more
    assert raw["scheduling"]["provisioningModel"] == "STANDARD"  # a reclaim would take her kernels
    home = [d for d in raw["disks"] if not d["boot"]]
    assert [(d["deviceName"], d["autoDelete"]) for d in home] == [("home", False)]
    assert home[0]["source"].endswith(f"/zones/{spawner.zone}/disks/oceanlab-home-alice")
    assert raw["zone"].endswith(spawner.zone) and spawner.volume_id == "oceanlab-home-alice"

    script = _startup_script(raw)
    assert TOKEN not in script and "machine-secret/server-alice" in script
    assert f"http://{HUB_IP}:8000/services/dask-gateway/api" in script
    secret = GcpMachineSecrets(PROJECT, PLATFORM, client=site.secrets).read("server-alice")
    assert secret.owner == {"platform": PLATFORM, "server": "alice"}  # the broker: her server's instance only
    env = secret.values["env"]
    assert env["JUPYTERHUB_API_TOKEN"] == TOKEN and env["JUPYTERHUB_API_URL"] == f"http://{HUB_IP}:8000/hub/api"
    assert spawner.server_command()[spawner.server_command().index("--device") + 1] == HOME_DEVICE

    # a restarted hub finds it again from the spawner's state
    again = _spawner(site)
    again.load_state(spawner.get_state())
    assert asyncio.run(again.poll()) is None

    first = spawner.machine_id
    asyncio.run(spawner.stop())
    assert first not in [i["name"] for i in site.compute.instances()]
    with pytest.raises(Exception, match=r"404|not found|NotFound"):
        _secret(site, "server-alice")
    assert asyncio.run(again.poll()) == 1
    assert [name for _, name in compute_disks.disks_of(site.compute)] == ["oceanlab-home-alice"]  # kept

    spawner.clear_state()
    asyncio.run(spawner.start())  # a new instance, the same disk
    assert spawner.machine_id != first and spawner.volume_id == "oceanlab-home-alice"
    assert [d["source"] for d in _instance(site, spawner.machine_id)["disks"] if not d["boot"]] == [home[0]["source"]]
    bob = _spawner(site, "bob")
    asyncio.run(bob.start())
    assert bob.volume_id == "oceanlab-home-bob" and bob.machine_id != spawner.machine_id
    assert _instance(site, bob.machine_id)["serviceAccounts"][0]["email"] == ACCOUNTS["bob"]
    for each in (spawner, bob):
        asyncio.run(each.stop())


def test_a_refused_launch_deletes_the_secret_and_names_the_homes_zone(site):
    spawner = _spawner(site)
    site.compute.refuse(machine_type="n2-standard-2")
    with pytest.raises(Exception, match="the zone of their home") as refused:
        asyncio.run(spawner.start())
    assert getattr(refused.value, "status_code", None) == 503
    assert [s.name for s in site.secrets.list_secrets(parent=f"projects/{PROJECT}")] == []
    assert [i["name"] for i in site.compute.instances()] == []


def test_destroy_machines_only_ends_servers_secrets_and_homes_without_terraform(site):
    alice, bob = _spawner(site), _spawner(site, "bob")
    for spawner in (alice, bob):
        asyncio.run(spawner.start())
    stray = GcpMachineSecrets(PROJECT, PLATFORM, client=site.secrets)
    stray.put("cluster-c0ffee", {"env": {}})  # a gateway that died holding a cluster's secret
    GcpMachineSecrets(PROJECT, "otherplatform", client=site.secrets).put("server-alice", {"env": {}})
    env = {**os.environ, ENDPOINTS_VARIABLE: str(site.endpoints), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "deploy.cli.main", "destroy", "--yes", "--machines-only"],
                          cwd=site.root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "2 notebook server(s) ended; 3 machine secret(s) deleted; 2 home disk(s)/volume(s) deleted" in done.stdout
    assert site.compute.instances() == [] and compute_disks.disks_of(site.compute) == []
    left = [s.name.rsplit("/", 1)[-1] for s in site.secrets.list_secrets(parent=f"projects/{PROJECT}")]
    assert left == [naming.gcp_machine_secret_id("otherplatform", "server-alice")]
    again = subprocess.run([sys.executable, "-m", "deploy.cli.main", "destroy", "--yes", "--machines-only"],
                           cwd=site.root, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "no notebook server, machine secret or home" in again.stdout


def test_machines_only_is_refused_on_the_local_target(tmp_path, example_text):
    (tmp_path / "platform.yaml").write_text(example_text)
    done = subprocess.run([sys.executable, "-m", "deploy.cli.main", "destroy", "--yes", "--machines-only"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "--machines-only is for the aws and gcp targets" in done.stderr
    assert "Traceback" not in done.stderr


