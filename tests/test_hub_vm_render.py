"""The hub VM as rendered: its user data, artifacts bucket, state volume, secrets and grants.

Pure checks on the rendered output (no Terraform, no moto): the end-to-end boot is
tests/test_aws_hub_e2e.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from modules import naming
from modules.aws.user_data import VENV
from render.build import render
from render.hub_vm import render_hub_vm
from tests.support.terraform import example_platform

NAME = "oceanlab"
BUCKET = f"{NAME}-artifacts-123456789012"


@pytest.fixture(scope="module")
def built() -> dict[str, bytes]:
    return render(example_platform("aws", egress="nat"), "aws")


@pytest.fixture(scope="module")
def stack(built) -> dict:
    return json.loads(built["terraform/aws/main.tf.json"])


def test_names_the_contract_agrees_on():
    assert naming.artifacts_bucket("lab", "111122223333") == "lab-artifacts-111122223333"
    assert naming.secret_name("lab", "cookie-secret") == "graticule/lab/cookie-secret"


def test_user_data_is_in_build_and_is_what_the_instance_gets(built, stack):
    script = built["hub-vm/user-data.sh"].decode()
    assert script.startswith("#!/bin/sh\n")
    hub = stack["resource"]["aws_instance"]["hub"]
    # Terraform's literal: the shell's ${...} escaped as $${...}, nothing else changed
    assert hub["user_data"].replace("$${", "${").replace("%%{", "%{") == script
    assert hub["user_data_replace_on_change"] is False
    settings = json.loads(script.split("<<'VMJSON'\n")[1].split("\nVMJSON")[0])
    assert settings == {"platform": NAME, "region": "us-west-2", "bucket": BUCKET, "log_group": f"/graticule/{NAME}",
                        "state_dir": "/var/lib/graticule", "state_device": "/dev/xvdf"}
    assert stack["resource"]["aws_cloudwatch_log_group"]["platform"]["name"] == settings["log_group"]
    for step in ("--aws-sigv4", "--require-hashes", "--offline", "--no-index", "exec \"$VENV/bin/python\" -m "
                 "deploy.vm.boot /etc/graticule/vm.json", "config/current.json"):
        assert step in script
    assert f"VENV={VENV}" in script


def test_user_data_holds_no_secret_and_nothing_users_change():
    base = example_platform("aws", egress="nat")
    more = base.model_copy(update={"users": [*base.users, base.users[0].model_copy(update={"name": "zed"})]})
    before, after = render_hub_vm(base, "aws"), render_hub_vm(more, "aws")
    assert before == after  # a new user never replaces the hub
    script = before["hub-vm/user-data.sh"].decode().lower()
    for word in ("alice", "bob", "students", "m6i.large", "client_id", "iv1.0123", "password"):
        assert word not in script


def test_no_user_data_for_other_targets():
    assert list(render_hub_vm(example_platform("aws", egress="nat"), "gcp")) == ["hub-vm/startup-script.sh"]
    assert render_hub_vm(example_platform("aws", egress="nat"), "local") == {}


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck is not installed (scripts/test.sh installs it)")
def test_user_data_passes_shellcheck(built, tmp_path):
    path = tmp_path / "user-data.sh"
    path.write_bytes(built["hub-vm/user-data.sh"])
    result = subprocess.run(["shellcheck", "--shell=sh", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_artifacts_bucket_is_private_encrypted_versioned_and_destroyable(stack):
    resources = stack["resource"]
    bucket = resources["aws_s3_bucket"]["artifacts"]
    assert bucket["bucket"] == BUCKET and bucket["force_destroy"] is True
    assert resources["aws_s3_bucket_versioning"]["artifacts"]["versioning_configuration"]["status"] == "Enabled"
    (rule,) = resources["aws_s3_bucket_server_side_encryption_configuration"]["artifacts"]["rule"]
    assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
    assert all(resources["aws_s3_bucket_public_access_block"]["artifacts"][k] is True
               for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    policy = stack["data"]["aws_iam_policy_document"]["artifacts"]["statement"][0]
    assert policy["effect"] == "Deny" and policy["condition"][0]["variable"] == "aws:SecureTransport"
    assert resources["aws_s3_bucket_policy"]["artifacts"]["policy"] == "${data.aws_iam_policy_document.artifacts.json}"
    assert stack["output"]["artifacts_bucket"]["value"] == "${aws_s3_bucket.artifacts.bucket}"


def test_state_volume_is_encrypted_tagged_and_attached(stack):
    volume = stack["resource"]["aws_ebs_volume"]["hub_state"]
    assert volume["encrypted"] is True and volume["type"] == "gp3" and volume["kms_key_id"] == "${aws_kms_key.main.arn}"
    assert volume["tags"]["graticule-role"] == "hub-state" and volume["tags"]["mount-point"] == "/var/lib/graticule"
    assert volume["availability_zone"] == "${aws_subnet.private_0.availability_zone}"  # the hub's subnet's
    attachment = stack["resource"]["aws_volume_attachment"]["hub_state"]
    assert attachment == {"device_name": "/dev/xvdf", "volume_id": "${aws_ebs_volume.hub_state.id}",
                          "instance_id": "${aws_instance.hub.id}"}
    # the instance does not claim the volume's tags (volume_tags would)
    assert "volume_tags" not in stack["resource"]["aws_instance"]["hub"]


def test_secrets_exist_without_values(stack):
    secrets = stack["resource"]["aws_secretsmanager_secret"]
    names = {s["name"] for s in secrets.values()}
    expected = {f"graticule/{NAME}/{key}" for key in naming.SECRET_KEYS_GENERATED}
    # github auth needs an OAuth secret; any platform may be given a database URL
    assert names == expected | {f"graticule/{NAME}/oauth-client-secret", f"graticule/{NAME}/database-url"}
    operators = {s["name"] for s in secrets.values() if s["description"].endswith("(set by the operator)")}
    assert operators == {f"graticule/{NAME}/oauth-client-secret", f"graticule/{NAME}/database-url"}
    assert all(s["recovery_window_in_days"] == 0 and s["kms_key_id"] == "${aws_kms_key.main.arn}"
               for s in secrets.values())
    assert "aws_secretsmanager_secret_version" not in stack["resource"]  # no value in Terraform's state
    assert "secret_string" not in json.dumps(stack)


def test_local_auth_has_no_oauth_secret():
    from render.terraform import synthesize_target

    platform = example_platform("aws", egress="nat")
    local = platform.model_copy(update={"hub": platform.hub.model_copy(update={
        "auth": platform.hub.auth.model_copy(update={"provider": "local", "github": None})})})
    stack = json.loads(synthesize_target(local, "aws")["terraform/aws/main.tf.json"])
    names = {s["name"] for s in stack["resource"]["aws_secretsmanager_secret"].values()}
    assert f"graticule/{NAME}/oauth-client-secret" not in names and len(names) == 6
    assert f"graticule/{NAME}/database-url" in names


def test_hub_role_reads_its_bucket_and_its_secrets_only(stack):
    statements = {s["sid"]: s for s in stack["data"]["aws_iam_policy_document"]["hub"]["statement"]}
    secrets = statements["ReadPlatformSecrets"]
    assert sorted(secrets["actions"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    assert secrets["resources"] == [f"arn:aws:secretsmanager:us-west-2:123456789012:secret:graticule/{NAME}/*"]
    # values only on the secrets it generates: never the operator's OAuth client secret or database URL
    puts = [s for s in statements.values() if any("PutSecretValue" in a for a in s["actions"])]
    generated = next(s for s in puts if s["sid"] == "PutGeneratedSecrets")
    assert generated["actions"] == ["secretsmanager:PutSecretValue"]
    assert sorted(generated["resources"]) == sorted(
        f"arn:aws:secretsmanager:us-west-2:123456789012:secret:graticule/{NAME}/{key}-??????"
        for key in ("cookie-secret", "proxy-auth-token", "gateway-api-token", "admin-api-token",
                    "gateway-encrypt-keys"))
    other_puts = [r for s in puts if s["sid"] != "PutGeneratedSecrets" for r in s["resources"]]
    assert all("/machines/" in resource for resource in other_puts)  # the launched machines' own secrets
    assert statements["ReadArtifacts"]["actions"] == ["s3:GetObject"]
    assert statements["ReadArtifacts"]["resources"] == ["${aws_s3_bucket.artifacts.arn}/*"]
    assert statements["ListArtifacts"]["resources"] == ["${aws_s3_bucket.artifacts.arn}"]
    key = statements["UsePlatformKeyThroughS3AndSecrets"]
    assert key["condition"][0]["variable"] == "kms:ViaService"
    # the one S3 write: synced environments' wheels (the gateway publishes them for the machines)
    s3_writes = [(s["sid"], a, r) for s in statements.values() for a in s["actions"] for r in s["resources"]
                 if a.startswith("s3:") and "Get" not in a and "List" not in a]
    assert s3_writes == [("PublishSyncedEnvironments", "s3:PutObject",
                          "${aws_s3_bucket.artifacts.arn}/environments/*")]


def test_behind_a_load_balancer_the_hub_gives_out_its_addresses(monkeypatch, tmp_path):
    """On the hub VM, GRATICULE_PUBLIC_* (from Terraform's outputs, deploy.vm.boot) are what the
    identity provider calls back at and what the discovery document gives laptops."""
    from jupyterhub.app import JupyterHub

    from render.hub_config import render_hub

    environment = {
        "GRATICULE_STATE_DIR": str(tmp_path / "state"), "GRATICULE_HUB_URL": "http://127.0.0.1:8000",
        "GRATICULE_GATEWAY_SCHEDULER_URL": "tls://0.0.0.0:8786", "GRATICULE_DISCOVERY_URL": "http://127.0.0.1:8003",
        "GRATICULE_GATEWAY_API_TOKEN": "g", "GRATICULE_ADMIN_API_TOKEN": "a",
        "GRATICULE_PUBLIC_HUB_URL": "https://hub.oceanlab.org",
        "GRATICULE_PUBLIC_SCHEDULER_URL": "tls://front.example.org:8786",
    }
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    for relative, data in render_hub(example_platform("aws", egress="nat"), "aws").items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(data)
    app = JupyterHub()
    app.load_config_file(str(tmp_path / "hub" / "jupyterhub_config.py"))
    assert app.config.OAuthenticator.oauth_callback_url == "https://hub.oceanlab.org/hub/oauth_callback"
    discovery = next(s for s in app.config.JupyterHub.services if s["name"] == "platform")
    assert json.loads(discovery["environment"]["GRATICULE_DISCOVERY"])["scheduler_proxy"] == \
        "tls://front.example.org:8786"
