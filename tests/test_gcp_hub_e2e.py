"""The hub on GCP, end to end, on the simulated cloud.

Terraform's google provider is not mirrored here, so nothing runs `terraform apply` for
gcp: the test creates what the rendered stack (build/terraform/gcp/main.tf.json) would,
from its values (tests/support/gcp_hub.py): the network, subnetwork, templates, the hub's
state disk with its `mount-point` label and the hub instance with its rendered
startup-script metadata in the fake Compute API (checked against Compute's discovery
document), the artifacts bucket in Cloud Storage (gcp-storage-emulator) and the secrets
without versions in Secret Manager (the fake checked against its discovery document).
Then `platform apply`'s publishing step puts the wheelhouse (from this machine's installed
packages, tests/support/hub_wheelhouse.py) and the configuration into the bucket.

The GCE machine simulator boots the hub instance from its startup script: a token from
the metadata server, the wheelhouse through Cloud Storage's JSON API, graticule installed
offline with hashes required, `deploy.vm.boot` mounting the state disk, generating the
secrets into Secret Manager and starting the components. Through the rendered load
balancer only (the simulator's front door, with the rendered firewall enforced):

- the hub is healthy; alice logs in (her first login sets her password), gets a token;
- a new user published as a re-apply does logs in (config sync from Cloud Storage);
- the hub replaced (a new instance, the same disk) knows alice's password and token and
  dave, and no secret was generated twice;
- the operator's `platform status` and `token` reach it through Compute Engine, Secret
  Manager and the load balancer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.cloud.google_clients import ENDPOINTS_VARIABLE
from deploy.vm import publish
from deploy.vm.gcp_stores import GcsObjects
from deploy.vm.wheelhouse import ensure_wheelhouse
from modules import naming
from render.build import render
from render.validate import validate_text
from tests.conftest import REPO as CHECKOUT
from tests.support.gce.server import running_fake_compute
from tests.support.gcp.secret_manager import running_secret_manager
from tests.support.gcp.storage import running_gcs
from tests.support.gcp_hub import PROJECT, RenderedStack, platform_yaml
from tests.support.hub_e2e import Session, cli, token_user, wait_healthy, with_user
from tests.support.hub_wheelhouse import hub_wheels
from tests.support.simulator import simulator_unavailable
from tests.support.simulator.gce_simulator import GceSimulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400),
              pytest.mark.skipif(simulator_unavailable() is not None, reason=simulator_unavailable() or "")]

BOOT_TIMEOUT = 900.0  # a busy shared machine installs ~170 wheels slowly


def _diagnose(sim: GceSimulator, name: str):
    def report() -> str:
        parts = []
        for box in sim.booted(name):
            parts.append(f"--- console\n{box.console_log.read_text(errors='replace')[-6000:]}")
            for log in sorted((box.root / "var/log/graticule").glob("*.log")):
                parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts) or f"{name} has no booted sandbox"
    return report


def _eventually(check, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(2)


def _versions_added(secret_manager) -> list[dict]:
    return [r for r in secret_manager.requests if r["path"].endswith(":addVersion")]


def _operator_commands(workdir: Path, env: dict[str, str], stack: RenderedStack, front: str) -> None:
    """`platform status` and `token` from an operator's checkout, as after `platform apply`."""
    outputs = {"hub_instance": stack.hub["name"], "hub_zone": stack.zone, "project": PROJECT,
               "hub_url": "https://hub.oceanlab.org"}
    (workdir / "build").mkdir(exist_ok=True)
    (workdir / "build" / "outputs.json").write_text(json.dumps(outputs))
    done = subprocess.run([sys.executable, "-m", "deploy.cli.main", "status", "--json"], cwd=workdir,
                          env={**os.environ, **env, "PYTHONPATH": str(CHECKOUT)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode in (0, 1), done.stderr  # 1: something is down (the gateway may be restarting)
    components = {c["name"]: c for c in json.loads(done.stdout)["components"]}
    assert components["hub-vm"]["up"] is True and components["hub-vm"]["detail"] == "running"
    assert components["hub"]["up"] is True
    token = cli(workdir, env, "token", "dave", timeout=120).stdout.strip()
    assert token_user(front, token) == "dave"


def test_hub_boots_from_its_startup_script_serves_follows_and_survives_replacement(tmp_path, monkeypatch):
    text = platform_yaml()
    build = render(validate_text(text))
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
        artifacts = GcsObjects(bucket, client=gcs.client())
        outputs = {"project": PROJECT, "region": "us-central1", "artifacts_bucket": bucket,
                   "hub_url": "https://hub.oceanlab.org"}
        publish.publish(artifacts, house, publish.config_files(build, outputs))
        sim.firewall(main)
        front = sim.front_door(main).url(443)
        hub = stack.hub["name"]
        diagnose = _diagnose(sim, hub)
        try:
            stack.insert_hub()
            box = sim.wait_running(hub, timeout=300)
            wait_healthy(front, BOOT_TIMEOUT, diagnose)
            console = box.console_log.read_text(errors="replace")
            for phase in ("startup-script", "wheelhouse-download", "wheelhouse-install", "boot"):
                assert f"graticule-phase {phase} " in console, console[-3000:]
            added = _versions_added(secret_manager)
            assert len(added) == len(naming.SECRET_KEYS_GENERATED)  # generated on first boot, into Secret Manager

            # alice logs in (her first login sets her password) and gets a token; nobody else may
            alice = Session(front, "alice")
            assert alice.login().status_code == 302
            token = alice.new_token()
            assert token_user(front, token) == "alice"
            assert Session(front, "mallory").login("whatever-1").status_code != 302

            # a new user published, as a re-apply does: config sync takes it from Cloud Storage
            assert Session(front, "dave").login().status_code != 302
            changed = render(validate_text(with_user(text, "dave", "ocean")))
            publish.publish(artifacts, house, publish.config_files(changed, outputs))
            dave = Session(front, "dave")
            _eventually(lambda: dave.login().status_code == 302, 180, "dave could not log in after the re-publish")

            # the hub replaced: a new instance on the same state disk
            stack.delete_hub()
            sim.wait_stopped(box.instance_id, timeout=300)
            stack.insert_hub()
            replaced = sim.wait_running(hub, timeout=300)
            assert replaced.instance_id != box.instance_id
            wait_healthy(front, BOOT_TIMEOUT, diagnose)
            assert Session(front, "alice").login().status_code == 302  # her password, not a new first login
            assert Session(front, "alice").login("a-wrong-password").status_code != 302
            assert token_user(front, token) == "alice"
            assert Session(front, "dave").login().status_code == 302
            assert _versions_added(secret_manager) == added  # the same secrets, none generated again

            endpoints = tmp_path / "endpoints.json"
            endpoints.write_text(json.dumps({"compute": compute.url, "secretmanager": secret_manager.url}))
            (tmp_path / "platform.yaml").write_text(with_user(text, "dave", "ocean"))
            _operator_commands(tmp_path, {ENDPOINTS_VARIABLE: str(endpoints), "GRATICULE_CLOUD_HUB_URL": front},
                               stack, front)
        except BaseException:
            print(diagnose())  # the instance's logs, before its sandbox goes
            raise
