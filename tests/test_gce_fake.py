"""The fake Compute API (tests/support/gce/) refuses what the discovery document does not
allow, with the real API's status and message shapes, so it cannot drift into accepting
anything; and what it serves, it serves as Compute does (operations, requestId, capacity
errors). Raw HTTP for the refusals (the generated client cannot even send most of them),
the real google-cloud-compute client for the rest."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from google.cloud import compute_v1

from tests.support.gce import capacity
from tests.support.gce.clients import client, wait
from tests.support.gce.server import running_fake_compute
from tests.support.gce.setup import network, template

PROJECT = "oceanlab-prod"
ZONE = "us-central1-a"
INSTANCES = f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances"
TEMPLATE = "global/instanceTemplates/small"


@pytest.fixture(scope="module")
def fake():
    with running_fake_compute(PROJECT) as fake:
        network(fake, {"us-central1": "10.20.0.0/24", "europe-west6": "10.20.1.0/24"})
        template(fake, "small", "n2-standard-4")
        yield fake


def _send(fake, method: str, path: str, body=None, **query) -> tuple[int, dict]:
    target = fake.url + path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(target, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _refused(fake, method: str, path: str, body=None, **query) -> tuple[int, str, str]:
    before = len(fake.instances())
    status, answer = _send(fake, method, path, body, **query)
    assert "error" in answer, answer
    assert len(fake.instances()) == before  # nothing was made
    return status, answer["error"]["errors"][0]["reason"], answer["error"]["message"]


@pytest.mark.parametrize(("body", "expected"), [
    ({"name": "w-1", "machineTyp": "n2-standard-4"}, 'Unknown name "machineTyp" at \'resource\''),
    ({"name": "w-1", "scheduling": {"preemptable": True}}, 'Unknown name "preemptable" at \'resource.scheduling\''),
    ({"name": "w-1", "canIpForward": "no"}, "Invalid value at 'resource.canIpForward' (TYPE_BOOL)"),
    ({"name": "w-1", "labels": ["a"]}, "Invalid value at 'resource.labels'"),
    ({"name": "w-1", "scheduling": {"provisioningModel": "CHEAP"}},
     "Invalid value at 'resource.scheduling.provisioningModel' (enum), \"CHEAP\""),
    ({"name": "w-1", "disks": [{"boot": True, "initializeParams": {"diskSizeGb": "fifty"}}]},
     "Invalid value at 'resource.disks[0].initializeParams.diskSizeGb' (TYPE_INT64)"),
])
def test_a_body_the_document_does_not_allow_is_refused_400(fake, body, expected):
    status, reason, message = _refused(fake, "POST", INSTANCES, body, sourceInstanceTemplate=TEMPLATE)
    assert (status, reason) == (400, "invalid") and message.startswith("Invalid JSON payload received.")
    assert expected in message


def test_a_missing_required_field_or_parameter_is_refused(fake):
    status, reason, message = _refused(fake, "POST", INSTANCES, {"machineType": "n2-standard-4"})
    assert (status, reason, message) == (400, "required", "Required field 'resource.name' not specified")
    # A query parameter the document marks required (checked before "not served by the fake").
    status, reason, message = _refused(fake, "POST", f"{INSTANCES}/w-1/setDiskAutoDelete")
    assert (status, reason) == (400, "required") and "autoDelete" in message
    # ... and the same request complete is valid, only not served (501), never guessed at.
    status, answer = _send(fake, "POST", f"{INSTANCES}/w-1/setDiskAutoDelete", autoDelete="true", deviceName="d")
    assert status == 501 and "not served" in answer["error"]["message"]


def test_malformed_names_parameters_and_unknown_query_parameters_are_refused(fake):
    status, _, message = _refused(fake, "POST", INSTANCES, {"name": "Worker_1"},
                                  sourceInstanceTemplate=TEMPLATE)
    assert status == 400 and message.startswith("Invalid value for field 'resource.name': 'Worker_1'")
    status, reason, _ = _refused(fake, "GET", f"/compute/v1/projects/{PROJECT}/zones/US_CENTRAL/instances")
    assert (status, reason) == (400, "invalidParameter")
    status, _, message = _refused(fake, "GET", INSTANCES, maxResult="5")
    assert status == 400 and 'Unknown name "maxResult": Cannot bind query parameter' in message
    status, _, _ = _refused(fake, "GET", INSTANCES, maxResults="many")
    assert status == 400
    status, _, message = _refused(fake, "POST", INSTANCES, {"name": "w-1"}, requestId="not-a-uuid",
                                  sourceInstanceTemplate=TEMPLATE)
    assert status == 400 and "requestId" in message
    status, _, message = _refused(fake, "POST", INSTANCES, {"name": "w-1", "labels": {"user": "Alice@Example.org"}},
                                  sourceInstanceTemplate=TEMPLATE)
    assert status == 400 and "violates format constraints" in message
    assert _send(fake, "GET", "/compute/v1/projects/oceanlab-prod/zones/us-central1-a/nonsense")[0] == 404


def test_scheduling_compute_itself_refuses(fake):
    spot_that_migrates = {"name": "w-1", "scheduling": {"provisioningModel": "SPOT", "onHostMaintenance": "MIGRATE"}}
    status, _, message = _refused(fake, "POST", INSTANCES, spot_that_migrates,
                                  sourceInstanceTemplate=TEMPLATE)
    assert status == 400 and "onHostMaintenance TERMINATE" in message
    gpu = {"name": "w-1", "guestAccelerators": [{"acceleratorType": "nvidia-tesla-t4", "acceleratorCount": 1}]}
    status, _, message = _refused(fake, "POST", INSTANCES, gpu, sourceInstanceTemplate=TEMPLATE)
    assert status == 400 and "do not support live migration" in message
    other_region = {"name": "w-1", "networkInterfaces": [{"subnetwork": "regions/europe-west6/subnetworks/private"}]}
    status, _, message = _refused(fake, "POST", INSTANCES, other_region,
                                  sourceInstanceTemplate=TEMPLATE)
    assert status == 400 and "same region" in message


def test_an_instance_from_its_template_through_the_real_client(fake):
    instances = client(fake, "InstancesClient")
    request = compute_v1.InsertInstanceRequest(
        project=PROJECT, zone=ZONE, source_instance_template=f"projects/{PROJECT}/global/instanceTemplates/small",
        request_id="0b6a4c1e-3f0e-4a53-9d4c-6f0f2a1b9c01",
        instance_resource=compute_v1.Instance(name="fake-w-1", labels={"platform": "oceanlab", "role": "worker"}))
    operation = instances.insert(request=request)
    assert fake.instances(ZONE)[-1]["status"] == "PROVISIONING"
    again = instances.insert(request=request)  # a retry: the same operation, nothing new
    assert again.name == operation.name and len(fake.calls("compute.instances.insert")) >= 2
    assert [i["name"] for i in fake.instances()].count("fake-w-1") == 1
    assert wait(fake, operation).status == compute_v1.Operation.Status.DONE
    got = instances.get(project=PROJECT, zone=ZONE, instance="fake-w-1")
    assert got.status == "RUNNING" and got.machine_type.endswith(f"/zones/{ZONE}/machineTypes/n2-standard-4")
    assert got.network_interfaces[0].network_i_p.startswith("10.20.0.")
    assert dict(got.labels) == {"platform": "oceanlab", "role": "worker"}

    fake.power_off("fake-w-1")
    assert instances.get(project=PROJECT, zone=ZONE, instance="fake-w-1").status == "TERMINATED"
    wait(fake, instances.delete(project=PROJECT, zone=ZONE, instance="fake-w-1"))
    assert "fake-w-1" not in [i["name"] for i in fake.instances()]


@pytest.mark.parametrize("reason", capacity.REASONS)
def test_capacity_and_quota_refusals_end_the_operation_as_compute_does(fake, reason):
    fake.refuse(zone=ZONE, reason=reason)
    try:
        instances = client(fake, "InstancesClient")
        operation = instances.insert(request=compute_v1.InsertInstanceRequest(
            project=PROJECT, zone=ZONE, source_instance_template="global/instanceTemplates/small",
            instance_resource=compute_v1.Instance(name=f"refused-{reason.lower().replace('_', '-')}")))
        done = client(fake, "ZoneOperationsClient").wait(project=PROJECT, zone=ZONE, operation=operation.name)
    finally:
        fake.clear_refusals()
    (error,) = done.error.errors
    if reason == capacity.QUOTA_EXCEEDED:
        assert (error.code, done.http_error_status_code) == ("QUOTA_EXCEEDED", 403)
        assert error.error_details[0].quota_info.dimensions["region"] == "us-central1"
    else:
        assert error.code.startswith("ZONE_RESOURCE_POOL_EXHAUSTED") and done.http_error_status_code == 503
    if reason == capacity.STOCKOUT:
        assert "STOCKOUT" in error.message and error.error_details[1].error_info.reason == "resource_availability"
    assert fake.refused[-1] == (ZONE, "n2-standard-4", "STANDARD", reason)
    assert not [i for i in fake.instances() if i["name"].startswith("refused-")]


def test_a_spot_vm_preempted_is_deleted_or_stopped_as_its_termination_action_says(fake):
    instances = client(fake, "InstancesClient")
    for name, action in (("spot-delete", "DELETE"), ("spot-stop", "STOP")):
        scheduling = compute_v1.Scheduling(provisioning_model="SPOT", automatic_restart=False,
                                           on_host_maintenance="TERMINATE", instance_termination_action=action)
        wait(fake, instances.insert(request=compute_v1.InsertInstanceRequest(
            project=PROJECT, zone=ZONE, source_instance_template=TEMPLATE,
            instance_resource=compute_v1.Instance(name=name, scheduling=scheduling))))
        fake.preempt(name)
    names = {i["name"]: i["status"] for i in fake.instances()}
    assert "spot-delete" not in names and names["spot-stop"] == "TERMINATED"
    wait(fake, instances.insert(request=compute_v1.InsertInstanceRequest(
        project=PROJECT, zone=ZONE, source_instance_template=TEMPLATE,
        instance_resource=compute_v1.Instance(name="standard-1"))))
    with pytest.raises(ValueError, match="not a Spot VM"):
        fake.preempt("standard-1")
    wait(fake, instances.delete(project=PROJECT, zone=ZONE, instance="spot-stop"))
    wait(fake, instances.delete(project=PROJECT, zone=ZONE, instance="standard-1"))


def _enum_paths(document, schema_name: str, prefix: tuple = (), depth: int = 0) -> list[tuple[tuple, list]]:
    """(path, allowed values) of every settable enum field of a schema, nested objects included."""
    found = []
    for key, definition in document.schemas[schema_name].get("properties", {}).items():
        if definition.get("readOnly"):
            continue
        if "enum" in definition:
            found.append(((*prefix, key), definition["enum"]))
        elif "$ref" in definition and depth < 2:
            found += _enum_paths(document, definition["$ref"], (*prefix, key), depth + 1)
    return found


def _nested(path: tuple, value) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value


def test_every_enum_field_of_an_instance_refuses_a_value_outside_it(fake):
    paths = _enum_paths(fake.document, "Instance")
    assert len(paths) > 10 and ("scheduling", "provisioningModel") in [p for p, _ in paths]
    for path, allowed in paths:
        assert "NOT_A_VALUE" not in allowed
        status, reason, message = _refused(fake, "POST", INSTANCES, {"name": "w-1", **_nested(path, "NOT_A_VALUE")},
                                           sourceInstanceTemplate=TEMPLATE)
        assert (status, reason) == (400, "invalid") and f"'resource.{'.'.join(path)}' (enum)" in message, path


def test_every_object_of_an_instance_refuses_an_unknown_field(fake):
    objects = [("resource",)] + [(*path,) for path, _ in _enum_paths(fake.document, "Instance")]
    for path in {p[:-1] for p in objects if len(p) > 1} | {()}:
        body = {"name": "w-1", **_nested(path, {"surelyNotAField": True})} if path else \
            {"name": "w-1", "surelyNotAField": True}
        status, _, message = _refused(fake, "POST", INSTANCES, body, sourceInstanceTemplate=TEMPLATE)
        assert status == 400 and 'Unknown name "surelyNotAField"' in message, path


def test_an_answer_outside_the_document_is_a_500_not_sent_as_is(fake, monkeypatch):
    from tests.support.gce import handlers

    monkeypatch.setitem(handlers.HANDLERS, "compute.instanceTemplates.get",
                        lambda store, params, body: {"name": "small", "notInTheSchema": 1})
    status, answer = _send(fake, "GET", f"/compute/v1/projects/{PROJECT}/global/instanceTemplates/small")
    assert status == 500 and "is not a InstanceTemplate" in answer["error"]["message"]


def test_compute_s_own_limits_names_from_a_pattern_and_metadata_size(fake):
    too_long = {"count": 2, "minCount": 2, "namePattern": "w" * 60 + "-####", "sourceInstanceTemplate": TEMPLATE}
    status, _, message = _refused(fake, "POST", f"{INSTANCES}/bulkInsert", too_long)
    assert status == 400 and "must be a match of regex" in message
    big = {"name": "w-1", "metadata": {"items": [{"key": "startup-script", "value": "#" * (256 * 1024 + 1)}]}}
    status, _, message = _refused(fake, "POST", INSTANCES, big, sourceInstanceTemplate=TEMPLATE)
    assert status == 400 and "at most 256 KB" in message


def test_stop_start_and_suspend_resume_date_the_instance_as_compute_does(fake):
    """lastStartTimestamp at every start (the first included), lastStopTimestamp and
    lastSuspendedTimestamp at a stop and a suspension: what GCP metering reads."""
    instances = client(fake, "InstancesClient")
    wait(fake, instances.insert(request=compute_v1.InsertInstanceRequest(
        project=PROJECT, zone=ZONE, source_instance_template=TEMPLATE,
        instance_resource=compute_v1.Instance(name="cycled"))))

    def look() -> compute_v1.Instance:
        return instances.get(project=PROJECT, zone=ZONE, instance="cycled")

    first = look()
    assert first.status == "RUNNING" and first.last_start_timestamp >= first.creation_timestamp
    assert not first.last_stop_timestamp and not first.last_suspended_timestamp
    fake.power_off("cycled")
    wait(fake, instances.start(project=PROJECT, zone=ZONE, instance="cycled"))
    started = look()
    assert started.status == "RUNNING"
    assert first.last_start_timestamp < started.last_stop_timestamp < started.last_start_timestamp
    wait(fake, instances.suspend(project=PROJECT, zone=ZONE, instance="cycled"))
    suspended = look()
    assert suspended.status == "SUSPENDED" and suspended.last_suspended_timestamp > started.last_start_timestamp
    wait(fake, instances.resume(project=PROJECT, zone=ZONE, instance="cycled"))
    resumed = look()
    assert resumed.status == "RUNNING" and resumed.last_start_timestamp > suspended.last_suspended_timestamp
    assert {c["id"] for c in fake.requests} >= {"compute.instances.start", "compute.instances.suspend",
                                                "compute.instances.resume"}
    wait(fake, instances.delete(project=PROJECT, zone=ZONE, instance="cycled"))
