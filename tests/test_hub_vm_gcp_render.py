"""The GCP hub VM as rendered: its startup script, artifacts bucket, state disk, secrets and grants.

Pure checks on the rendered output (the google provider is not mirrored here, so no
Terraform runs; the provider-schema check of every attribute is tests/test_terraform_gcp.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from modules import naming
from modules.gcp.startup_script import VENV
from render.build import render
from render.hub_vm import render_hub_vm
from tests.test_terraform_gcp import example_platform, resources

NAME = "oceanlab"
PROJECT = "oceanlab-prod"
BUCKET = f"{NAME}-artifacts-{PROJECT}"


@pytest.fixture(scope="module")
def built() -> dict[str, bytes]:
    return render(example_platform("nat"), "gcp")


@pytest.fixture(scope="module")
def stack(built) -> dict:
    return json.loads(built["terraform/gcp/main.tf.json"])


def test_names_the_contract_agrees_on():
    assert naming.gcp_artifacts_bucket("lab", "my-project") == "lab-artifacts-my-project"
    long = naming.gcp_artifacts_bucket("a-very-long-platform-name-12345", "a-very-long-project-id-123456")
    assert len(long) <= 63 and long.startswith("a-very-long-platform-name-12345-artifacts-")
    assert naming.gcp_secret_id("lab", "cookie-secret") == "graticule-lab-cookie-secret"
    assert naming.gcp_label_value("/var/lib/graticule") == "_var_lib_graticule"


def test_startup_script_is_in_build_and_is_the_instance_metadata(built, stack):
    script = built["hub-vm/startup-script.sh"].decode()
    assert script.startswith("#!/bin/sh\n")
    hub = resources(stack, "google_compute_instance")["hub"]
    # Terraform's literal: the shell's ${...} escaped as $${...}, nothing else changed
    assert hub["metadata"]["startup-script"].replace("$${", "${").replace("%%{", "%{") == script
    assert "metadata_startup_script" not in hub  # that one would replace the hub on every change
    assert hub["metadata"]["block-project-ssh-keys"] == "true"
    settings = json.loads(script.split("<<'VMJSON'\n")[1].split("\nVMJSON")[0])
    assert settings == {"cloud": "gcp", "platform": NAME, "project": PROJECT, "region": "us-central1",
                        "bucket": BUCKET, "log_group": f"graticule-{NAME}", "state_dir": "/var/lib/graticule",
                        "state_device": "/dev/disk/by-id/google-graticule-state"}
    for step in ("Metadata-Flavor: Google", "instance/service-accounts/default/token", "--require-hashes",
                 "--offline", "--no-index", "config/current.json", "?alt=media", "/etc/graticule/google-endpoints.json",
                 'exec "$VENV/bin/python" -m deploy.vm.boot /etc/graticule/vm.json'):
        assert step in script
    assert f"VENV={VENV}" in script
    assert stack["output"]["artifacts_bucket"]["value"] == "${google_storage_bucket.artifacts.name}"


def test_startup_script_holds_no_secret_and_nothing_users_change():
    base = example_platform("nat")

    def more(data) -> None:
        data["users"].append({"name": "zed", "groups": ["students"]})
        data["profiles"]["small"]["instance"]["gcp"] = "n2-standard-4"

    before, after = render_hub_vm(base, "gcp"), render_hub_vm(example_platform("nat", more), "gcp")
    assert before == after  # a new user or profile never touches the hub
    script = before["hub-vm/startup-script.sh"].decode().lower()
    for word in ("alice", "bob", "students", "n2-standard", "client_id", "iv1.0123", "password", "bearer ya29"):
        assert word not in script
    # the token travels in a header file, never on curl's command line
    original = before["hub-vm/startup-script.sh"].decode()
    assert '-H "@$AUTH"' in original and '-H "Authorization' not in original


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck is not installed (scripts/test.sh installs it)")
def test_startup_script_passes_shellcheck(built, tmp_path):
    path = tmp_path / "startup-script.sh"
    path.write_bytes(built["hub-vm/startup-script.sh"])
    result = subprocess.run(["shellcheck", "--shell=sh", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_artifacts_bucket_is_private_encrypted_and_destroyable_and_the_hub_reads_it_and_adds_environments(stack):
    bucket = resources(stack, "google_storage_bucket")["artifacts"]
    assert bucket["name"] == BUCKET and bucket["force_destroy"] is True
    assert bucket["uniform_bucket_level_access"] is True and bucket["public_access_prevention"] == "enforced"
    assert bucket["encryption"] == {"default_kms_key_name": "${google_kms_crypto_key.main.id}"}
    hub = "serviceAccount:${google_service_account.hub.email}"
    on_artifacts = [m for m in resources(stack, "google_storage_bucket_iam_member").values()
                    if m["bucket"] == "${google_storage_bucket.artifacts.name}"]
    unconditional = [m for m in on_artifacts if "condition" not in m]
    assert unconditional == [{"bucket": "${google_storage_bucket.artifacts.name}",
                              "role": "roles/storage.objectViewer", "member": hub}]
    # the hub creates objects under environments/ only (synced environments), overwriting none
    (creates,) = [m for m in on_artifacts if m["member"] == hub and "condition" in m]
    assert creates["role"] == "roles/storage.objectCreator"
    assert creates["condition"]["expression"] == (
        f'resource.name.startsWith("projects/_/buckets/{BUCKET}/objects/environments/")')
    # the machines' accounts read only the wheels they install, and config/current.json naming them
    machines = [m for m in on_artifacts if "condition" in m and m["member"] != hub]
    workers = {f"serviceAccount:${{google_service_account.{key}.email}}"
               for key in resources(stack, "google_service_account") if key.startswith("worker_")}
    assert {m["member"] for m in machines} == workers and workers
    for grant in machines:
        assert grant["role"] == "roles/storage.objectViewer"
        expression = grant["condition"]["expression"]
        assert f'/buckets/{BUCKET}/objects/environments/")' in expression
        assert f'/buckets/{BUCKET}/objects/wheelhouse/")' in expression
        assert f'resource.name == "projects/_/buckets/{BUCKET}/objects/config/current.json"' in expression
        assert "objects/config/\"" not in expression and expression.count("||") == 2


def test_state_disk_is_separate_encrypted_labelled_and_attached(stack):
    disk = resources(stack, "google_compute_disk")["hub_state"]
    assert disk["name"] == f"{NAME}-hub-state" and disk["type"] == "pd-balanced"
    assert disk["zone"] == resources(stack, "google_compute_instance")["hub"]["zone"]
    assert disk["disk_encryption_key"] == {"kms_key_self_link": "${google_kms_crypto_key.main.id}"}
    assert disk["labels"] == {"role": "hub-state", "mount-point": "_var_lib_graticule"}
    (attached,) = resources(stack, "google_compute_instance")["hub"]["attached_disk"]
    assert attached["source"] == "${google_compute_disk.hub_state.self_link}"
    assert attached["device_name"] == "graticule-state" and attached["mode"] == "READ_WRITE"
    assert stack["output"]["hub_state_disk"]["value"] == "${google_compute_disk.hub_state.name}"
    # the hub may create and label its workers' disks, never its own state disk
    condition = resources(stack, "google_project_iam_member")["hub_launch"]["condition"]["expression"]
    assert f'!resource.name.endsWith("/disks/{NAME}-hub-state")' in condition


def test_secrets_exist_without_values_and_the_hub_adds_only_its_own(stack):
    secrets = resources(stack, "google_secret_manager_secret")
    ids = {s["secret_id"] for s in secrets.values()}
    generated = {f"graticule-{NAME}-{key}" for key in naming.SECRET_KEYS_GENERATED}
    operators = {f"graticule-{NAME}-oauth-client-secret", f"graticule-{NAME}-database-url"}
    assert ids == generated | operators
    assert all(s["replication"] == {"auto": {}} for s in secrets.values())
    assert "google_secret_manager_secret_version" not in stack["resource"]  # no value in Terraform's state
    assert "secret_data" not in json.dumps(stack)
    grants: dict[str, set[str]] = {}
    for member in resources(stack, "google_secret_manager_secret_iam_member").values():
        assert member["member"] == "serviceAccount:${google_service_account.hub.email}"
        key = member["secret_id"].split(".")[1]
        grants.setdefault(secrets[key]["secret_id"], set()).add(member["role"])
    reader, adder = "roles/secretmanager.secretAccessor", "roles/secretmanager.secretVersionAdder"
    assert {i: r for i, r in grants.items() if i in generated} == {i: {reader, adder} for i in generated}
    assert {i: r for i, r in grants.items() if i in operators} == {i: {reader} for i in operators}
    # no project-wide Secret Manager role
    assert not any("secretmanager" in m["role"] for m in resources(stack, "google_project_iam_member").values())
    services = {s["service"] for s in resources(stack, "google_project_service").values()}
    assert "secretmanager.googleapis.com" in services


def test_local_auth_has_no_oauth_secret():
    def local(data) -> None:
        data["hub"]["auth"] = {"provider": "local"}

    from render.terraform_gcp import synthesize_gcp

    rendered = json.loads(synthesize_gcp(example_platform("nat", local)))
    ids = {s["secret_id"] for s in resources(rendered, "google_secret_manager_secret").values()}
    assert f"graticule-{NAME}-oauth-client-secret" not in ids and len(ids) == 6
