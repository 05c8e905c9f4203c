"""The GCP hub VM's parts against real clients and local stand-ins: Cloud Storage is the
gcp-storage-emulator package (a real emulator), Secret Manager the fake validated against
its discovery document (no emulator installs from PyPI; tests/support/gcp). Secrets
generated once and kept, the operator's read; the published configuration read back
(and refused when altered); the wheelhouse uploaded only when absent; config sync from
Cloud Storage; `platform apply`'s publishing step for target gcp.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.cloud.google_clients import ENDPOINTS_VARIABLE, google_endpoints
from deploy.errors import RuntimeFailure
from deploy.runtime.addresses import Runtime
from deploy.runtime.state import Layout
from deploy.vm import boot, config, config_sync, publish, secrets, units
from deploy.vm.gcp_stores import GcpSecrets, GcsObjects
from deploy.vm.settings import VmSettings
from deploy.vm.stores import StoreError, operator_store
from deploy.vm.wheelhouse import Wheelhouse
from modules import naming
from tests.support.gcp.secret_manager import running_secret_manager
from tests.support.gcp.storage import running_gcs

PROJECT = "oceanlab-prod"
PLATFORM = "lab"
BUCKET = naming.gcp_artifacts_bucket(PLATFORM, PROJECT)


@pytest.fixture(scope="module")
def gcs():
    with running_gcs(PROJECT) as running:
        yield running


@pytest.fixture
def artifacts(gcs) -> GcsObjects:
    gcs.wipe()
    gcs.client().create_bucket(BUCKET)
    return GcsObjects(BUCKET, client=gcs.client())


@pytest.fixture
def secret_manager():
    with running_secret_manager(PROJECT) as fake:
        client = secretmanager.SecretManagerServiceClient(
            credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": fake.url})
        for key in (*naming.SECRET_KEYS_GENERATED, naming.OAUTH_CLIENT_SECRET_KEY, naming.DATABASE_URL_KEY):
            # as Terraform does: the secret, no version
            client.create_secret(parent=f"projects/{PROJECT}", secret_id=naming.gcp_secret_id(PLATFORM, key),
                                 secret={"replication": {"automatic": {}}})
        yield fake, client


def _wheelhouse(tmp_path: Path) -> Wheelhouse:
    directory = tmp_path / "wheelhouse" / "abc"
    directory.mkdir(parents=True)
    (directory / "a-1-py3-none-any.whl").write_bytes(b"wheel a")
    (directory / "requirements.txt").write_text("a==1 --hash=sha256:00\n")
    (directory / "index.json").write_text(json.dumps({"files": ["a-1-py3-none-any.whl"]}))
    return Wheelhouse("abc", directory)


def test_secrets_are_generated_once_and_the_operators_is_read(secret_manager, tmp_path):
    fake, client = secret_manager
    store = GcpSecrets(PROJECT, PLATFORM, client)
    first = secrets.ensure(store)
    assert set(first) == set(naming.SECRET_KEYS_GENERATED)  # no OAuth secret until the operator sets one
    assert len(first["cookie-secret"]) == 64 and first["cookie-secret"] != first["admin-api-token"]
    adds = [r for r in fake.requests if r["path"].endswith(":addVersion")]
    assert len(adds) == len(naming.SECRET_KEYS_GENERATED)
    operator = store.name(naming.OAUTH_CLIENT_SECRET_KEY)
    client.add_secret_version(parent=operator, payload={"data": b"from-operator"})
    second = secrets.ensure(GcpSecrets(PROJECT, PLATFORM, client))  # a replaced hub gets the same values
    assert {k: v for k, v in second.items() if k in first} == first
    assert second["oauth-client-secret"] == "from-operator" and "database-url" not in second
    assert len([r for r in fake.requests if r["path"].endswith(":addVersion")]) == len(adds) + 1  # the operator's
    client.add_secret_version(parent=store.name(naming.DATABASE_URL_KEY), payload={"data": b"postgresql://h/db\n"})
    assert secrets.ensure(store)["database-url"] == "postgresql://h/db"
    secrets.write(second, tmp_path / "run" / "secrets")
    written = tmp_path / "run" / "secrets" / "cookie_secret"
    assert written.read_text() == first["cookie-secret"] + "\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_a_missing_secret_reads_as_no_value_and_a_refused_call_is_a_store_error(secret_manager):
    _, client = secret_manager
    assert GcpSecrets(PROJECT, "other", client).value("cookie-secret") is None  # no such secret
    with pytest.raises(StoreError, match="secrets/graticule-other-cookie-secret"):
        GcpSecrets(PROJECT, "other", client).add("cookie-secret", "x")  # the secret does not exist
    with pytest.raises(StoreError, match="Permission denied"):
        GcpSecrets("someone-elses", PLATFORM, client).value("cookie-secret")


def test_publish_then_read_back_and_refuse_altered(artifacts, gcs, tmp_path):
    house = _wheelhouse(tmp_path)
    files = publish.config_files({"hub/platform.json": b"{}", "gateway/platform.json": b"{}", "manifest.json": b"{}",
                                  "terraform/gcp/main.tf.json": b"{}"}, {"hub_url": "https://hub"})
    assert "terraform/gcp/main.tf.json" not in files and "outputs.json" in files
    done = publish.publish(artifacts, house, files)
    assert done.uploaded_wheels == 1 and done.wheelhouse == "abc"
    assert config.current(artifacts) == {"version": done.version, "wheelhouse": "abc"}
    assert config.fetch(artifacts, done.version) == files
    names = {blob.name for blob in gcs.client().list_blobs(BUCKET)}
    assert {"wheelhouse/abc/a-1-py3-none-any.whl", "wheelhouse/abc/index.json", "config/current.json"} <= names
    assert gcs.client().bucket(BUCKET).blob("wheelhouse/abc/a-1-py3-none-any.whl").download_as_bytes() == b"wheel a"
    again = publish.publish(artifacts, house, files)
    assert again.version == done.version and again.uploaded_wheels == 0  # the wheelhouse is there
    gcs.client().bucket(BUCKET).blob(f"config/{done.version}/hub/platform.json").upload_from_string(b"{\"evil\": 1}")
    with pytest.raises(ValueError, match="incomplete or altered"):
        config.fetch(artifacts, done.version)


def test_publish_to_a_missing_bucket_is_a_runtime_failure(gcs, tmp_path):
    gcs.wipe()
    with pytest.raises(RuntimeFailure, match="gs://nowhere"):
        publish.publish(GcsObjects("nowhere", client=gcs.client()), _wheelhouse(tmp_path), {"manifest.json": b"1"})


def test_apply_publishes_to_gcs_for_target_gcp(artifacts, gcs, tmp_path, monkeypatch):
    """cloud_ops.publish_hub's store for gcp (stores.operator_store): the operator's side, pointed at the emulator
    by GRATICULE_GOOGLE_ENDPOINTS (a test's stand-in for Google's endpoints)."""
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps({"storage": gcs.url}))
    monkeypatch.setenv(ENDPOINTS_VARIABLE, str(endpoints))
    assert google_endpoints() == {"storage": gcs.url}
    store = operator_store("gcp", BUCKET, project=PROJECT)
    assert store.url == f"gs://{BUCKET}"
    done = publish.publish(store, _wheelhouse(tmp_path), {"manifest.json": b"1"})
    assert config.current(artifacts)["version"] == done.version


def test_gcp_hub_runs_config_sync_the_log_shipper_to_cloud_logging_and_the_reaper():
    agents = units.agent_units(Path("/etc/graticule/vm.json"), Path("/var/lib/graticule"), "gcp")
    assert list(agents) == ["graticule-config-sync.service", "graticule-logship.service", "graticule-reaper.service"]
    assert "Description=graticule log shipper to Cloud Logging" in agents["graticule-logship.service"]
    aws = units.agent_units(Path("/etc/graticule/vm.json"), Path("/var/lib/graticule"))
    assert "Description=graticule log shipper to CloudWatch Logs" in aws["graticule-logship.service"]


def test_settings_from_the_startup_script_name_the_cloud_and_project(tmp_path):
    from modules.gcp.startup_script import hub_startup_script

    script = hub_startup_script(PLATFORM, PROJECT, "us-central1")
    path = tmp_path / "vm.json"
    path.write_text(script.split("<<'VMJSON'\n")[1].split("\nVMJSON")[0])
    settings = VmSettings.load(path)
    assert (settings.cloud, settings.project, settings.bucket) == ("gcp", PROJECT, BUCKET)
    assert settings.state_device == "/dev/disk/by-id/google-graticule-state"


def test_config_sync_follows_cloud_storage(artifacts, tmp_path, monkeypatch):
    # systemd cannot run here: the restarts config sync asks for are recorded instead.
    runtime = Runtime(Layout(tmp_path / "state"), boot.PORTS, public_host="0.0.0.0")
    settings = VmSettings(PLATFORM, "us-central1", BUCKET, "graticule-lab", runtime.layout.root,
                          naming.GCP_STATE_DEVICE, cloud="gcp", project=PROJECT)
    values = {key: "x" * 32 for key in naming.SECRET_KEYS_GENERATED}
    monkeypatch.setattr(config_sync, "RUN_DIR", tmp_path / "run")
    monkeypatch.setattr(units, "RUN_DIR", tmp_path / "run")
    secrets.write(values, tmp_path / "run" / "secrets")
    runtime.layout.root.mkdir(parents=True)
    secrets.link_state_secrets(runtime.layout.secrets, tmp_path / "run" / "secrets")
    restarted: list[str] = []
    monkeypatch.setattr(boot, "systemctl", lambda *args: restarted.append(" ".join(args)))
    monkeypatch.setattr(boot, "wait_healthy", lambda runtime, components=(): None)
    house = _wheelhouse(tmp_path)
    build = {"hub/platform.json": b"{\"users\": [\"alice\"]}", "gateway/platform.json": b"{}", "manifest.json": b"1"}

    def apply(files: dict[str, bytes]) -> list[str]:
        publish.publish(artifacts, house, publish.config_files(files, {}))
        restarted.clear()
        return config_sync.sync_once(settings, artifacts)

    apply(build)
    assert apply(build) == [] and restarted == []
    changed = apply({**build, "hub/platform.json": b"{\"users\": [\"alice\", \"dave\"]}", "manifest.json": b"2"})
    assert changed == ["hub"] and restarted == ["restart graticule-hub.service"]
    assert (runtime.layout.build / "hub" / "platform.json").read_bytes() == b"{\"users\": [\"alice\", \"dave\"]}"
