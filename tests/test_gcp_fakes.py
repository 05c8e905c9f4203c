"""The Google fakes the GCP tests use, checked on their own (no root, no simulator):
Secret Manager (a fake that refuses what its discovery document does not allow), Cloud
Storage (gcp-storage-emulator, a real emulator) and the GCE metadata server stand-in,
driven by the real clients (google-cloud-secret-manager, google-cloud-storage, google-auth).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from google.api_core import exceptions as google_errors
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager_v1

from tests.support.gce.discovery import load, shipped_document
from tests.support.gce.validation import ApiError, Validator
from tests.support.gcp.secret_manager import running_secret_manager
from tests.support.gcp.storage import running_gcs
from tests.support.simulator.gce_metadata import GceMetadata, GceMetadataServer, answer

PROJECT = "oceanlab-prod"


@pytest.fixture
def secrets():
    with running_secret_manager(PROJECT) as fake:
        yield fake


def _client(fake) -> secretmanager_v1.SecretManagerServiceClient:
    return secretmanager_v1.SecretManagerServiceClient(credentials=AnonymousCredentials(), transport="rest",
                                                       client_options={"api_endpoint": fake.url})


def _raw(fake, method: str, path: str, body: object | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(fake.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Authorization": "Bearer any"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_secret_manager_serves_the_client_round_trip(secrets):
    client = _client(secrets)
    secret = client.create_secret(parent=f"projects/{PROJECT}", secret_id="database-url",
                                  secret={"replication": {"automatic": {}}, "labels": {"platform": "oceanlab"}})
    assert secret.name.endswith("/secrets/database-url") and secret.labels["platform"] == "oceanlab"
    client.add_secret_version(parent=secret.name, payload={"data": b"first"})
    second = client.add_secret_version(parent=secret.name, payload={"data": b"postgresql://db/hub"})
    assert second.name.endswith("/versions/2") and second.state == secretmanager_v1.SecretVersion.State.ENABLED
    latest = client.access_secret_version(name=f"projects/{PROJECT}/secrets/database-url/versions/latest")
    assert latest.payload.data == b"postgresql://db/hub" and latest.name == second.name
    assert client.access_secret_version(name=f"{secret.name}/versions/1").payload.data == b"first"
    assert [s.name for s in client.list_secrets(parent=f"projects/{PROJECT}")] == [secret.name]
    with pytest.raises(google_errors.Conflict):  # 409 ALREADY_EXISTS
        client.create_secret(parent=f"projects/{PROJECT}", secret_id="database-url",
                             secret={"replication": {"automatic": {}}})
    client.delete_secret(name=secret.name)
    with pytest.raises(google_errors.NotFound):
        client.access_secret_version(name=f"{secret.name}/versions/latest")
    with pytest.raises(google_errors.NotFound):
        client.get_secret(name=f"projects/{PROJECT}/secrets/never-made")


def test_secret_manager_refuses_what_the_discovery_document_does_not_allow(secrets):
    """The fake cannot drift into accepting anything: each of these is a 400 from Google too."""
    create = f"/v1/projects/{PROJECT}/secrets?secretId=ok"
    refused = {
        "unknown field": ("POST", create, {"replication": {"automatic": {}}, "rotationPolicy": "weekly"}),
        "unknown nested field": ("POST", create, {"replication": {"automatic": {}, "everywhere": True}}),
        "wrong type": ("POST", create, {"replication": {"automatic": {}}, "labels": ["a", "b"]}),
        "unknown query parameter": ("POST", f"{create}&secretName=ok", {"replication": {"automatic": {}}}),
        "no replication": ("POST", create, {}),
        "no secret id": ("POST", f"/v1/projects/{PROJECT}/secrets", {"replication": {"automatic": {}}}),
        "bad secret id": ("POST", f"/v1/projects/{PROJECT}/secrets?secretId=a.b", {"replication": {"automatic": {}}}),
    }
    for case, (method, path, body) in refused.items():
        status, reply = _raw(secrets, method, path, body)
        assert (status, reply["error"]["status"]) == (400, "INVALID_ARGUMENT"), case
    assert _raw(secrets, "POST", create, {"replication": {"automatic": {}}})[0] == 200
    version = f"/v1/projects/{PROJECT}/secrets/ok:addVersion"
    for body in ({"payload": {"data": "not base64!"}}, {"payload": {"data": "YQ==", "dataCrc32c": "x1"}},
                 {"payload": {"data": "YQ==", "dataCrc32c": "1"}}, {"data": "YQ=="}):
        assert _raw(secrets, "POST", version, body)[0] == 400, body
    assert _raw(secrets, "GET", f"/v1/projects/{PROJECT}/secrets/ok/versions", None)[1] == {}  # none was added
    assert _raw(secrets, "GET", f"/v1/projects/{PROJECT}/secrets/ok/versions/latest:reveal", None)[0] == 404
    assert _raw(secrets, "PUT", f"/v1/projects/{PROJECT}/secrets/ok", {})[0] == 404  # no such method
    # the real client meets the refusal as Google's InvalidArgument
    with pytest.raises(google_errors.BadRequest):
        _client(secrets).add_secret_version(parent=f"projects/{PROJECT}/secrets/ok",
                                            payload={"data": b"a", "data_crc32c": 12345})
    assert all(r.get("status") for r in secrets.requests)  # every request recorded with its answer


def test_the_fakes_answers_are_held_to_the_document_too():
    assert shipped_document("secretmanager.v1.json").is_file()
    validator = Validator(load("secretmanager.v1"))
    validator.response("SecretVersion", {"name": "projects/1/secrets/a/versions/1", "state": "ENABLED"})
    for wrong in ({"name": 1}, {"state": "SHINY"}, {"payloadData": "x"}):
        with pytest.raises(ApiError):
            validator.response("SecretVersion", wrong)


def test_cloud_storage_emulator_serves_what_the_hub_boot_needs():
    with running_gcs(PROJECT) as gcs:
        client = gcs.client()
        bucket = client.create_bucket(f"{PROJECT}-artifacts")
        bucket.blob("wheelhouse/abc/index.json").upload_from_string(b'{"wheels": []}')
        bucket.blob("hub/config.json").upload_from_string(b"{}")
        listed = [b.name for b in client.list_blobs(bucket.name, prefix="wheelhouse/")]
        assert listed == ["wheelhouse/abc/index.json"]
        assert bucket.blob("wheelhouse/abc/index.json").download_as_bytes() == b'{"wheels": []}'
        with pytest.raises(google_errors.NotFound):
            bucket.blob("missing").download_as_bytes()
        # the client's own emulator switch finds it too (as code on a VM would, given the URL)
        code = ("from google.cloud import storage; c = storage.Client.create_anonymous_client(); "
                "print(c.bucket(__import__('sys').argv[1]).blob('hub/config.json').download_as_bytes())")
        env = {**os.environ, **gcs.environment()}
        out = subprocess.run([sys.executable, "-c", code, bucket.name], env=env, capture_output=True, text=True,
                             timeout=60)
        assert out.stdout.strip() == "b'{}'", out.stderr


def _metadata() -> GceMetadata:
    account = {"aliases": ["default"], "email": "hub@p.iam.gserviceaccount.com",
               "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
    instance = {"id": "4242", "name": "hub-1", "machine-type": "projects/1/machineTypes/e2-standard-2",
                "network-interfaces": {"0": {"ip": "10.20.0.2"}},
                "service-accounts": {"default": account, account["email"]: account}}
    return GceMetadata(instance, {"project-id": PROJECT}, lambda: {"startup-script": "#!/bin/sh\n", "my-key": "v"})


def test_metadata_answers_as_google_does():
    metadata, ok = _metadata(), {"Metadata-Flavor": "Google"}
    root = "/computeMetadata/v1"
    assert answer(metadata, {}, f"{root}/instance/id")[0] == 403
    assert answer(metadata, {**ok, "X-Forwarded-For": "1.2.3.4"}, f"{root}/instance/id")[0] == 403
    assert answer(metadata, ok, f"{root}/instance/id")[2] == b"4242"
    assert answer(metadata, ok, f"{root}/instance/nothing")[0] == 404
    status, headers, _ = answer(metadata, ok, f"{root}/instance/attributes")
    assert (status, headers["Location"]) == (301, f"{root}/instance/attributes/")
    assert answer(metadata, ok, f"{root}/instance/attributes/")[2] == b"startup-script\nmy-key\n"
    assert answer(metadata, ok, f"{root}/instance/")[2].startswith(b"id\nname\nmachine-type\nnetwork-interfaces/\n")
    tree = json.loads(answer(metadata, ok, f"{root}/instance/?recursive=true")[2])
    assert tree["machineType"].endswith("e2-standard-2") and tree["networkInterfaces"]["0"]["ip"] == "10.20.0.2"
    assert tree["attributes"]["my-key"] == "v" and "startup-script" in tree["attributes"]  # user keys as set
    assert answer(metadata, ok, f"{root}/instance/name?alt=json")[2] == b'"hub-1"'
    assert answer(metadata, ok, f"{root}/instance/service-accounts/default/scopes")[2] == \
        b"https://www.googleapis.com/auth/cloud-platform\n"


def test_google_auth_gets_a_token_from_the_metadata_server():
    """google-auth's Compute Engine credentials (what code on the VM uses) work against it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    server = GceMetadataServer(listener, _metadata()).start()
    try:
        code = ("import google.auth.transport.requests as r, google.auth.compute_engine as ce, google.auth as ga; "
                "c = ce.Credentials(); c.refresh(r.Request()); print(c.service_account_email, c.token[:5]); "
                "print(ga.default()[1])")
        env = {**os.environ, "GCE_METADATA_HOST": f"127.0.0.1:{listener.getsockname()[1]}",
               "GCE_METADATA_IP": f"127.0.0.1:{listener.getsockname()[1]}", "GOOGLE_CLOUD_PROJECT": ""}
        env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.stop()
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["hub@p.iam.gserviceaccount.com", "ya29.", PROJECT]


def test_secret_payload_encoding_matches_the_client(secrets):
    """A version added with curl-style base64 is what the client reads back, bytes for bytes."""
    _raw(secrets, "POST", f"/v1/projects/{PROJECT}/secrets?secretId=raw", {"replication": {"automatic": {}}})
    data = bytes(range(256))
    status, _ = _raw(secrets, "POST", f"/v1/projects/{PROJECT}/secrets/raw:addVersion",
                     {"payload": {"data": base64.b64encode(data).decode()}})
    assert status == 200
    assert _client(secrets).access_secret_version(name=f"projects/{PROJECT}/secrets/raw/versions/1").payload.data \
        == data
