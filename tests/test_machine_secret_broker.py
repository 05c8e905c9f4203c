"""Machine secrets on GCP and the broker that hands them out, against real parts: the Secret
Manager fake (validated against its discovery document) through google-cloud-secret-manager,
the fake Compute API (validated against Compute's) holding the instances the machines layer
launched with their labels, the broker's routes in a real aiohttp server, google-auth
verifying tokens that the simulator's metadata server code issues (gce_metadata.answer)
signed with the simulator's test key, whose certificates a loopback server serves as Google
serves its own. The certificates' cache: tests/test_broker_certificates.py.
"""

from __future__ import annotations

import json
import time

from deploy.cloud.gcp_machine_secrets import GcpMachineSecrets
from deploy.cloud.google_clients import ENDPOINTS_VARIABLE
from deploy.vm.gcp_stores import GcpSecrets
from modules import naming
from tests.support.machine_secret_broker import (
    AUDIENCE,
    PROJECT,
    VALUES,
    ZONE,
    Clock,
    ask,
    ask_all,
    broker_of,
    metadata_token,
)
from tests.support.simulator.gce_identity import IdentityIssuer
from tests.support.simulator.gce_metadata import GceMetadata, answer


def test_put_read_delete(broker_secrets, broker_secret_manager):
    name = broker_secrets.put("cluster-abc", VALUES, tags={"cluster": "abc", "user": "Alice"})
    assert name == "projects/oceanlab-prod/secrets/graticule-oceanlab-machines-cluster-abc"
    stored = broker_secret_manager.secrets["graticule-oceanlab-machines-cluster-abc"]
    assert stored["labels"] == {"platform": "oceanlab", "cluster": "abc", "user": "alice"}
    assert not stored.get("annotations")  # nothing per machine: no cap on a cluster's size
    found = broker_secrets.read("cluster-abc")
    assert found.values == VALUES and found.owner == {"platform": "oceanlab", "cluster": "abc"}

    broker_secrets.allow("cluster-abc", [f"oceanlab-abc-w-{i:04d}" for i in range(2000)])  # nothing to write on GCP
    assert broker_secret_manager.secrets["graticule-oceanlab-machines-cluster-abc"] == stored

    broker_secrets.put("cluster-abc", {"env": {"X": "new"}}, tags={"cluster": "abc", "user": "carol"})  # a new value
    again = broker_secrets.read("cluster-abc")
    assert again.values == {"env": {"X": "new"}} and again.labels["user"] == "carol"

    broker_secrets.put("server-bob", {"env": {}}, tags={"user": "bob", "server": "bob/lab"})
    assert broker_secrets.read("server-bob").owner == {"platform": "oceanlab", "server": "bob-lab"}
    broker_secrets.put("ownerless", {"env": {}})
    assert broker_secrets.read("ownerless").owner == {}

    broker_secrets.delete("cluster-abc")
    assert set(broker_secret_manager.secrets) == {"graticule-oceanlab-machines-server-bob",
                                                  "graticule-oceanlab-machines-ownerless"}
    assert broker_secrets.read("cluster-abc") is None
    broker_secrets.delete("cluster-abc")  # idempotent


def test_the_secret_stores_make_their_client_from_the_endpoints_file(broker_secret_manager, tmp_path, monkeypatch):
    """GcpMachineSecrets and the hub's GcpSecrets share google_clients.secret_manager_client:
    given no client, both reach the Secret Manager the endpoints file names."""
    endpoints = tmp_path / "google-endpoints.json"
    endpoints.write_text(json.dumps({"secretmanager": broker_secret_manager.url}))
    monkeypatch.setenv(ENDPOINTS_VARIABLE, str(endpoints))
    GcpMachineSecrets(PROJECT, "oceanlab", on_vm=False).put("cluster-abc", VALUES, tags={"cluster": "abc"})
    assert "graticule-oceanlab-machines-cluster-abc" in broker_secret_manager.secrets
    assert GcpSecrets(PROJECT, "oceanlab", on_vm=False).value("cookie-secret") is None  # asked, none there


def test_broker_answers_only_the_instances_labelled_with_the_secrets_owner(broker_secrets, broker_issuer, broker_fleet):
    broker_secrets.put("cluster-abc", VALUES, tags={"cluster": "abc", "user": "alice"})
    broker_secrets.put("cluster-bob", {"env": {"BOB": "1"}}, tags={"cluster": "bob", "user": "bob"})
    broker_secrets.put("server-alice", {"env": {"NB": "1"}}, tags={"user": "alice", "server": "alice"})
    broker_secrets.put("ownerless", {"env": {}})
    alice_s, = broker_fleet.launch("oceanlab-abc-s", cluster="abc", role="scheduler", user="alice")
    bob_w, = broker_fleet.launch("oceanlab-bob-w", cluster="bob", role="worker", user="bob")
    notebook, = broker_fleet.launch("oceanlab-nb-alice-1a2b3c", role="notebook", user="alice", server="alice")
    stranger, = broker_fleet.launch("oceanlab-odd", user="alice")  # the platform's, but no cluster's
    clock = Clock()
    broker = broker_of(broker_secrets, broker_issuer, broker_fleet, clock)

    alice_token = metadata_token(broker_issuer, alice_s)
    assert ask(broker, "cluster-abc", alice_token) == (200, VALUES)
    bob_token = metadata_token(broker_issuer, bob_w)  # valid, but not one of alice's cluster's machines
    status, body = ask(broker, "cluster-abc", bob_token)
    assert status == 403 and "oceanlab-bob-w" in body["message"] and "cluster" in body["message"]
    assert ask(broker, "cluster-bob", bob_token) == (200, {"env": {"BOB": "1"}})
    assert ask(broker, "server-alice", metadata_token(broker_issuer, notebook)) == (200, {"env": {"NB": "1"}})
    assert ask(broker, "server-alice", alice_token)[0] == 403  # alice's, but her cluster's, not her server
    assert ask(broker, "cluster-abc", metadata_token(broker_issuer, stranger))[0] == 403
    assert ask(broker, "ownerless", alice_token)[0] == 403

    status, body = ask(broker, "cluster-abc", metadata_token(broker_issuer, alice_s, audience="other"))
    assert status == 401 and "audience" in body["message"].lower()
    expired = broker_issuer.token(AUDIENCE, email="w@x", issued_at=time.time() - 7200, instance={
        "id": alice_s["id"], "name": alice_s["name"], "zone": ZONE, "project_id": PROJECT})
    status, body = ask(broker, "cluster-abc", expired)
    assert status == 401 and "expired" in body["message"].lower()
    status, body = ask(broker, "cluster-abc", metadata_token(broker_issuer, alice_s, full=False))
    assert status == 401 and "format=full" in body["message"]
    other_project = broker_issuer.token(AUDIENCE, email="w@x", instance={
        "id": alice_s["id"], "name": alice_s["name"], "zone": ZONE, "project_id": "someone-else"})
    assert ask(broker, "cluster-abc", other_project)[0] == 401
    with IdentityIssuer() as forger:  # signed by a key Google's certificates do not hold
        forged = metadata_token(forger, alice_s)
    assert ask(broker, "cluster-abc", forged)[0] == 401
    assert ask(broker, "cluster-abc", None)[0] == 401

    assert ask(broker, "cluster-nope", alice_token)[0] == 404
    assert ask(None, "cluster-abc", alice_token)[0] == 404  # a gateway without a broker (aws)

    # Its name launched again for bob's cluster: the old token is of another instance
    broker_fleet.machines.terminate([bob_w["name"]])
    status, body = ask(broker, "cluster-bob", bob_token)
    assert status == 403 and "no such instance" in body["message"]
    again = broker_fleet.relaunch("oceanlab-bob-w", cluster="bob", role="worker", user="bob")
    assert again["id"] != bob_w["id"]
    status, body = ask(broker, "cluster-bob", bob_token)
    assert status == 403 and "earlier instance" in body["message"]
    assert ask(broker, "cluster-bob", metadata_token(broker_issuer, again))[0] == 200

    broker_fleet.compute.fail_next("compute.instances.get", status=403)  # Compute cannot be asked: not a 403 of ours
    status, body = ask(broker, "cluster-abc", alice_token)
    assert status == 503 and "could not be read" in body["message"]

    broker_issuer.close()  # the certificates unreachable: the kept ones serve until they expire, then 503
    assert ask(broker, "cluster-abc", alice_token)[0] == 200
    clock.now += broker_issuer.max_age
    status, body = ask(broker, "cluster-abc", alice_token)
    assert status == 503 and "certificates" in body["message"]


def test_a_cluster_of_500_machines_reads_its_secret(broker_secrets, broker_secret_manager, broker_issuer, broker_fleet):
    """The annotation that listed allowed machines capped a cluster near 300 (16 KiB)."""
    broker_secrets.put("cluster-big", VALUES, tags={"cluster": "big", "user": "alice"})
    machines = [instance for batch in range(5)  # as the gateway batches them: 100 per bulkInsert
                for instance in broker_fleet.launch(f"oceanlab-big-w{batch}", count=100, cluster="big", role="worker",
                                                    user="alice")]
    names = [m["name"] for m in machines]
    assert len(set(names)) == 500
    broker_secrets.allow("cluster-big", names)
    other, = broker_fleet.launch("oceanlab-small-w", cluster="small", role="worker", user="alice")
    broker = broker_of(broker_secrets, broker_issuer, broker_fleet)

    assert ask_all(broker, "cluster-big", [metadata_token(broker_issuer, m) for m in machines]) == [200] * 500
    assert ask(broker, "cluster-big", metadata_token(broker_issuer, other))[0] == 403
    assert broker_issuer.fetches == 1
    stored = broker_secret_manager.secrets["graticule-oceanlab-machines-cluster-big"]
    assert len(json.dumps(stored.get("annotations") or {})) < 100


def test_metadata_server_identity_needs_an_audience(broker_issuer):
    metadata = GceMetadata({"service-accounts": {"default": {"email": "a@b"}}}, {}, dict,
                           lambda aud, email, full: broker_issuer.token(aud, email=email))
    status, _, body = answer(metadata, {"Metadata-Flavor": "Google"},
                             "/computeMetadata/v1/instance/service-accounts/default/identity")
    assert status == 400 and b"audience" in body
    status, _, _ = answer(metadata, {}, "/computeMetadata/v1/instance/service-accounts/default/identity?audience=x")
    assert status == 403  # without Metadata-Flavor, as Google's
    status, _, _ = answer(metadata, {"Metadata-Flavor": "Google"},
                          "/computeMetadata/v1/instance/service-accounts/nobody@x/identity?audience=x")
    assert status == 404
    status, _, body = answer(metadata, {"Metadata-Flavor": "Google"},
                             "/computeMetadata/v1/instance/service-accounts/default/identity?audience=x")
    header, claims = (json.loads(_b64(part)) for part in body.decode().split(".")[:2])
    assert header["alg"] == "RS256" and header["kid"] == broker_issuer.kid
    assert claims["aud"] == "x" and claims["iss"] == "https://accounts.google.com" and "google" not in claims


def _b64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_only_the_hub_may_touch_machine_secrets_in_the_rendered_iam():
    from render.build import render
    from render.validate import validate_text
    from tests.support.gcp_hub import platform_yaml

    main = json.loads(render(validate_text(platform_yaml()))["terraform/gcp/main.tf.json"])
    resources = main["resource"]
    roles = {f"${{google_project_iam_custom_role.{key}.name}}": role["permissions"]
             for key, role in resources["google_project_iam_custom_role"].items()}
    hub = "serviceAccount:${google_service_account.hub.email}"
    secret_grants = []
    for kind in ("google_project_iam_member", "google_secret_manager_secret_iam_member",
                 "google_service_account_iam_member", "google_storage_bucket_iam_member"):
        for grant in resources.get(kind, {}).values():
            permissions = roles.get(grant["role"], [grant["role"]])
            if any("secretmanager" in p for p in permissions):
                secret_grants.append(grant)
    assert secret_grants and all(grant["member"] == hub for grant in secret_grants)  # machines: none at all
    prefix = naming.gcp_machine_secret_prefix("oceanlab")
    reads = [g for g in secret_grants if any("versions.access" in p for p in roles.get(g["role"], []))]
    assert len(reads) == 1 and f'.startsWith("{prefix}")' in reads[0]["condition"]["expression"]
    # Least privilege: what deploy.cloud.gcp_machine_secrets calls, no update (labels are set at creation)
    custom = sorted(p for g in secret_grants if g["role"] in roles for p in roles[g["role"]])
    assert custom == ["secretmanager.secrets.create", "secretmanager.secrets.delete", "secretmanager.secrets.get",
                      "secretmanager.versions.access", "secretmanager.versions.add"]
    predefined = {g["role"] for g in secret_grants if g["role"] not in roles}
    assert predefined == {"roles/secretmanager.secretAccessor", "roles/secretmanager.secretVersionAdder"}


def test_no_machine_may_label_or_launch_instances_in_the_rendered_iam():
    """The broker trusts an instance's labels: only the hub may set them, or launch instances
    with them, or act as the hub; the machines' accounts hold only their runtime and bucket roles."""
    from modules.gcp.identity import RUNTIME_ROLES
    from modules.gcp.storage import ROLES as BUCKET_ROLES
    from render.build import render
    from render.validate import validate_text
    from tests.support.gcp_hub import platform_yaml

    main = json.loads(render(validate_text(platform_yaml()))["terraform/gcp/main.tf.json"])
    resources = main["resource"]
    roles = {f"${{google_project_iam_custom_role.{key}.name}}": role["permissions"]
             for key, role in resources["google_project_iam_custom_role"].items()}
    hub = "serviceAccount:${google_service_account.hub.email}"
    workers = {f"serviceAccount:${{google_service_account.{key}.email}}"
               for key in resources["google_service_account"] if key != "hub"}
    assert workers and hub not in workers
    granted: dict[str, set[str]] = {}
    for kind, grants in resources.items():
        if kind.endswith(("_iam_member", "_iam_binding")):
            for grant in grants.values():
                for member in [grant.get("member"), *grant.get("members", [])]:
                    if member:
                        granted.setdefault(member, set()).update(roles.get(grant["role"], [grant["role"]]))
    for kind in ("google_project_iam_policy", "google_service_account_iam_policy"):
        assert kind not in resources  # a whole policy could hand anything to anyone
    labelling = {"compute.instances.setLabels", "compute.instances.create", "compute.instances.setMetadata"}
    assert labelling <= granted[hub]
    allowed = set(RUNTIME_ROLES) | set(BUCKET_ROLES.values())
    for member in workers:
        assert granted.get(member, set()) <= allowed, member  # no custom role, no Compute role
        assert not any(p.startswith("compute.") for p in granted.get(member, set()))
    # nobody may act as the hub's account (impersonation would carry its labelling rights)
    hub_account = "${google_service_account.hub.name}"
    assert not [g for g in resources.get("google_service_account_iam_member", {}).values()
                if g["service_account_id"] == hub_account]


# google-cloud-secret-manager's client methods and the permission each needs.
SECRET_MANAGER_CALLS = {
    "create_secret": "secretmanager.secrets.create", "get_secret": "secretmanager.secrets.get",
    "update_secret": "secretmanager.secrets.update", "delete_secret": "secretmanager.secrets.delete",
    "list_secrets": "secretmanager.secrets.list", "add_secret_version": "secretmanager.versions.add",
    "access_secret_version": "secretmanager.versions.access", "get_secret_version": "secretmanager.versions.get",
    "list_secret_versions": "secretmanager.versions.list", "disable_secret_version": "secretmanager.versions.disable",
    "enable_secret_version": "secretmanager.versions.enable",
    "destroy_secret_version": "secretmanager.versions.destroy",
}


def _secret_manager_calls(path) -> set[str]:
    import ast

    return {node.func.attr for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in SECRET_MANAGER_CALLS}


def test_the_hubs_machine_secrets_call_only_what_its_roles_grant_and_nothing_updates_a_secret():
    """A grep-style check (the Secret Manager fake enforces no IAM): the calls in the code, by name."""
    from pathlib import Path

    import deploy
    from deploy.cloud import gcp_machine_secrets
    from modules.gcp.identity import MACHINE_SECRET_CREATE, MACHINE_SECRET_PERMISSIONS

    called = _secret_manager_calls(Path(gcp_machine_secrets.__file__))
    assert {"create_secret", "add_secret_version", "delete_secret"} <= called  # the scan sees the calls
    assert {SECRET_MANAGER_CALLS[c] for c in called} <= {*MACHINE_SECRET_PERMISSIONS, *MACHINE_SECRET_CREATE}
    updating = {str(path) for path in Path(deploy.__file__).parent.rglob("*.py")
                if "update_secret" in _secret_manager_calls(path)}
    assert updating == set()


def test_a_secret_put_again_keeps_its_labels_or_is_created_again_with_the_new_ones(
        broker_secrets, broker_secret_manager):
    broker_secrets.put("server-alice", {"env": {"X": "1"}}, tags={"user": "alice", "server": "alice"})
    first = dict(broker_secret_manager.secrets["graticule-oceanlab-machines-server-alice"])
    broker_secrets.put("server-alice", {"env": {"X": "2"}}, tags={"user": "alice", "server": "alice"})  # the next start
    assert broker_secret_manager.secrets["graticule-oceanlab-machines-server-alice"] == first  # only a new version
    assert broker_secrets.read("server-alice").values == {"env": {"X": "2"}}

    broker_secrets.put("server-alice", {"env": {"X": "3"}}, tags={"user": "alice", "server": "alice/lab"})
    found = broker_secrets.read("server-alice")
    assert found.values == {"env": {"X": "3"}} and found.owner == {"platform": "oceanlab", "server": "alice-lab"}
    methods = [r.get("method_id", "").rsplit(".", 1)[-1] for r in broker_secret_manager.requests]
    assert "patch" not in methods  # never secrets.update: the hub's role lacks it
    assert methods.count("delete") == 1 and methods.count("create") == 4  # the last put: refused, deleted, created
