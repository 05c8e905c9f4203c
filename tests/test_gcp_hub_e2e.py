"""The hub on GCP, end to end, on the simulated cloud.

Terraform's google provider is not mirrored here, so nothing runs `terraform apply` for
gcp: the test creates what the rendered stack (build/terraform/gcp/main.tf.json) would,
from its values, through the fake Compute API with google-cloud-compute (the network's
subnetwork, the hub's state disk with its `mount-point` label, the hub instance with its
rendered startup-script metadata and the disk attached), in Cloud Storage (the artifacts
bucket; gcp-storage-emulator) and in Secret Manager (the secrets without versions; the
fake checked against its discovery document). Then `platform apply`'s publishing step
puts the wheelhouse (from this machine's installed packages, tests/support/hub_wheelhouse.py)
and the configuration into the bucket.

The GCE machine simulator boots the hub instance from its startup script: a token from
the metadata server, the wheelhouse through Cloud Storage's JSON API, graticule installed
offline with hashes required, `deploy.vm.boot` mounting the state disk, generating the
secrets into Secret Manager and starting the components. The hub answers healthy on its
networkIP; a new user published as a re-apply does reaches it (config sync from Cloud
Storage); an API token made for alice survives the hub's replacement (a new instance with
the same disk), and no secret is generated twice.

The Compute fake is gcpsim's stand-in (tests/support/gcp/compute_standin.py): it serves
disks, which the simulator reads for their mount points; the load balancer is not
modelled by the GCE simulator, so the hub is reached on its own address, from inside.
"""

from __future__ import annotations

import json
import time

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.vm import publish
from deploy.vm.gcp_stores import GcsObjects
from deploy.vm.wheelhouse import ensure_wheelhouse
from modules import naming
from render.build import render
from render.validate import validate_text
from tests.support.gcp.compute_standin import running_fake_compute
from tests.support.gcp.secret_manager import running_secret_manager
from tests.support.gcp.storage import running_gcs
from tests.support.gcp_hub import PROJECT, RenderedStack, platform_yaml
from tests.support.hub_e2e import with_user
from tests.support.hub_wheelhouse import hub_wheels
from tests.support.simulator import simulator_unavailable
from tests.support.simulator.gce_simulator import GceSimulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400),
              pytest.mark.skipif(simulator_unavailable() is not None, reason=simulator_unavailable() or "")]

BOOT_TIMEOUT = 900.0  # a busy shared machine installs ~170 wheels slowly


def _diagnose(box) -> str:
    parts = [f"--- console\n{box.console_log.read_text(errors='replace')[-6000:]}"]
    for log in sorted((box.root / "var/log/graticule").glob("*.log")):
        parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


def _hub_api(box, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    """The hub's REST API on the instance's own address, with curl inside the instance."""
    args = ["curl", "-s", "--max-time", "30", "-o", "/tmp/answer.json", "-w", "%{http_code}", "-X", method,
            "-H", f"Authorization: token {token}", f"http://{box.ip}:8000/hub/api{path}"]
    if body is not None:
        args[1:1] = ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
    done = box.exec(args)
    status = int(done.stdout.strip() or 0)
    answer = box.exec(["cat", "/tmp/answer.json"]).stdout
    return status, (json.loads(answer) if answer.strip().startswith("{") else {})


def _wait_healthy(box, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = box.exec(["curl", "-fs", "--max-time", "5", f"http://{box.ip}:8000/hub/health"])
        if done.returncode == 0:
            return
        time.sleep(3)
    raise AssertionError(f"the hub on {box.name} did not answer within {timeout:.0f} s\n{_diagnose(box)}")


def _until(check, timeout: float, message) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(2)


def _admin_token(secret_client, platform: str) -> str:
    name = f"projects/{PROJECT}/secrets/{naming.gcp_secret_id(platform, 'admin-api-token')}/versions/latest"
    return secret_client.access_secret_version(name=name).payload.data.decode()


def test_hub_boots_from_its_startup_script_and_a_replaced_hub_keeps_its_state(tmp_path, monkeypatch):
    platform = validate_text(platform_yaml())
    build = render(platform)
    main = json.loads(build["terraform/gcp/main.tf.json"])
    monkeypatch.setenv("GRATICULE_WHEELHOUSE_FIND_LINKS", str(hub_wheels()))
    house = ensure_wheelhouse(tmp_path / "wheelhouse", cloud="gcp")
    with running_fake_compute(PROJECT) as compute, running_gcs(PROJECT) as gcs, \
            running_secret_manager(PROJECT) as secret_manager, \
            GceSimulator(compute, tmp_path / "sim", storage=gcs.url, secretmanager=secret_manager.url) as sim:
        secret_client = secretmanager.SecretManagerServiceClient(
            credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": secret_manager.url})
        stack = RenderedStack(main, compute, gcs, secret_client)
        bucket = stack.create()
        outputs = {"project": PROJECT, "region": "us-central1", "artifacts_bucket": bucket,
                   "hub_url": "https://hub.oceanlab.org"}
        publish.publish(GcsObjects(bucket, client=gcs.client()), house, publish.config_files(build, outputs))
        stack.insert_hub()
        box = sim.wait_running(stack.hub["name"], timeout=300)
        _wait_healthy(box, BOOT_TIMEOUT)
        console = box.console_log.read_text(errors="replace")
        for phase in ("startup-script", "wheelhouse-download", "wheelhouse-install", "boot"):
            assert f"graticule-phase {phase} " in console, console[-3000:]

        # the hub generated its secrets into Secret Manager; an admin token from there works
        added = [r for r in secret_manager.requests if r["path"].endswith(":addVersion")]
        assert len(added) == len(naming.SECRET_KEYS_GENERATED)
        admin = _admin_token(secret_client, platform.name)
        status, _ = _hub_api(box, "GET", "/users/alice", admin)
        if status == 404:
            assert _hub_api(box, "POST", "/users/alice", admin)[0] == 201
        status, made = _hub_api(box, "POST", "/users/alice/tokens", admin, {"note": "e2e", "expires_in": 86400})
        assert status in (200, 201), made
        token = made["token"]
        assert _hub_api(box, "GET", "/user", token)[1].get("name") == "alice"

        # a new user published, as a re-apply does: config sync takes it from Cloud Storage
        changed = render(validate_text(with_user(platform_yaml(), "dave", "ocean")))
        again = publish.publish(GcsObjects(bucket, client=gcs.client()), house, publish.config_files(changed, outputs))
        _until(lambda: box.exec(["cat", "/var/lib/graticule/build/VERSION"]).stdout.strip() == again.version, 180,
               lambda: f"config sync did not install {again.version[:12]}\n{_diagnose(box)}")
        assert "dave" in box.exec(["cat", "/var/lib/graticule/build/hub/platform.json"]).stdout
        _wait_healthy(box, 300)

        # the hub replaced: a new instance with the same state disk knows alice's token
        first_id = box.instance_id
        stack.delete_hub()
        sim.wait_stopped(first_id, timeout=300)
        stack.insert_hub()
        replaced = sim.wait_running(stack.hub["name"], timeout=300)
        assert replaced.instance_id != first_id
        _wait_healthy(replaced, BOOT_TIMEOUT)
        status, user = _hub_api(replaced, "GET", "/user", token)
        assert status == 200 and user["name"] == "alice", _diagnose(replaced)
        assert [r for r in secret_manager.requests if r["path"].endswith(":addVersion")] == added  # none again
        assert _admin_token(secret_client, platform.name) == admin
