"""The IMDS stand-in: IMDSv2 tokens and the metadata tree, served on loopback here.

In the simulator the same server listens on 169.254.169.254 inside each instance's
namespace (tests/test_simulator.py reads it from inside an instance).
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

from tests.support.simulator.imds import InstanceMetadata, MetadataServer, fallback_credentials

FIELDS = {"instance-id": "i-0abc", "local-ipv4": "172.31.0.7", "placement/availability-zone": "us-west-2a",
          "placement/region": "us-west-2"}


@pytest.fixture
def imds():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    metadata = InstanceMetadata(FIELDS, b"#!/bin/sh\necho hi\n", {"instanceId": "i-0abc"}, "hub",
                                fallback_credentials)
    server = MetadataServer(listener, metadata).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.stop()


def _token(base: str) -> str:
    request = urllib.request.Request(f"{base}/latest/api/token", method="PUT",
                                     headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    return urllib.request.urlopen(request, timeout=5).read().decode()


def _get(base: str, path: str, token: str | None) -> tuple[int, str]:
    headers = {"X-aws-ec2-metadata-token": token} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers), timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_imdsv1_is_refused_and_a_token_opens_the_tree(imds):
    assert _get(imds, "/latest/meta-data/instance-id", None) == (401, "")
    assert _get(imds, "/latest/meta-data/instance-id", "made-up") == (401, "")
    token = _token(imds)
    assert _get(imds, "/latest/meta-data/instance-id", token) == (200, "i-0abc")
    assert _get(imds, "/latest/meta-data/placement/availability-zone", token) == (200, "us-west-2a")
    assert _get(imds, "/latest/user-data", token) == (200, "#!/bin/sh\necho hi\n")
    assert _get(imds, "/latest/meta-data/nothing-here", token)[0] == 404


def test_directories_list_as_imds_lists_them(imds):
    token = _token(imds)
    assert _get(imds, "/latest/meta-data/", token)[1].splitlines() == ["iam/", "instance-id", "local-ipv4",
                                                                       "placement/"]
    assert _get(imds, "/latest/meta-data/placement/", token)[1].splitlines() == ["availability-zone", "region"]
    assert _get(imds, "/latest/meta-data/iam/security-credentials/", token) == (200, "hub")


def test_role_credentials_have_the_sdk_shape(imds):
    status, body = _get(imds, "/latest/meta-data/iam/security-credentials/hub", _token(imds))
    credentials = json.loads(body)
    assert status == 200 and credentials["Code"] == "Success"
    assert {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} <= credentials.keys()
    assert _get(imds, "/latest/meta-data/iam/security-credentials/other", _token(imds))[0] == 404
