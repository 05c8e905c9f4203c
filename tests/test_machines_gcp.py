"""The machines layer on GCP (deploy/cloud/gcp.py, gcp_placement.py) through the real
google-cloud-compute client against the fake Compute API (tests/support/gce/: a fake
because no Compute Engine emulator exists; it validates every request against Compute's
discovery document, so a request the real API would refuse for shape fails here too).
Capacity and quota errors are injected with `fake.refuse`, lost answers and throttling
with `fake.fail_next`."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from google.auth.credentials import AnonymousCredentials

from deploy.cloud import gcp_placement as placement
from deploy.cloud.deadman import DeadMan
from deploy.cloud.gcp import GCPMachines
from deploy.cloud.machines import STOPPED, MachinesError, MachineSpec
from deploy.cloud.reaper import reap
from tests.support.gce import capacity
from tests.support.gce.server import running_fake_compute
from tests.support.gce.setup import network, template

PROJECT = "oceanlab-prod"
ZONES = ["us-central1-a", "us-central1-b", "us-central1-c"]
OTHER_REGION_ZONE = "europe-west6-a"
TYPE = "n2-standard-4"
TAGS = {"platform": "oceanlab", "role": "worker", "user": "alice", "cluster": "c0ffee", "budget": "ocean"}
SCRIPT = "#!/bin/sh\necho hello\n"


@pytest.fixture
def cloud():
    with running_fake_compute(PROJECT) as fake:
        subnetworks = network(fake, {"us-central1": "10.20.0.0/24", "europe-west6": "10.20.1.0/24"})
        templates = {
            "small": template(fake, "oceanlab-small", TYPE),
            "gpu": template(fake, "oceanlab-gpu", "n1-standard-8", gpu=("nvidia-tesla-t4", 1)),
            "l4": template(fake, "oceanlab-l4", "g2-standard-8"),
            "spot": template(fake, "oceanlab-spot", TYPE, spot=True),
        }
        fake.requests.clear()
        yield fake, templates, subnetworks


def _machines(fake, zones=ZONES, **kwargs) -> GCPMachines:
    return GCPMachines(PROJECT, zones, client_options=fake.client_options(), credentials=AnonymousCredentials(),
                       **kwargs)


def _spec(templates, **overrides) -> MachineSpec:
    return MachineSpec(**{"name": "oceanlab-c0ffee-w-1", "template": templates["small"], "tags": TAGS,
                          "user_data": SCRIPT, **overrides})


def _raw(fake, name: str) -> dict:
    (instance,) = [i for i in fake.instances() if i["name"] == name]
    return instance


def _metadata(instance: dict) -> dict[str, str]:
    return {item["key"]: item["value"] for item in instance["metadata"]["items"]}


def test_labels_at_creation_request_id_and_startup_script(cloud):
    fake, templates, _ = cloud
    machine = _machines(fake).launch(_spec(templates))
    raw = _raw(fake, machine.id)
    (insert,) = fake.calls("compute.instances.insert")
    assert insert["body"]["labels"] == {"profile": "oceanlab-small", "managed-by": "graticule", **TAGS}  # at creation
    assert insert["query"]["requestId"] == [placement.request_id(_spec(templates), placement.STANDARD, ZONES[0])]
    assert insert["query"]["sourceInstanceTemplate"] == [templates["small"]]
    assert raw["labels"] == insert["body"]["labels"] and machine.tags == raw["labels"]
    metadata = _metadata(raw)
    assert metadata["startup-script"] == SCRIPT and metadata["enable-oslogin"] == "TRUE"  # the template's kept
    assert machine.zone == ZONES[0] and not machine.spot and machine.alive
    assert raw["scheduling"]["provisioningModel"] == "STANDARD" and raw["scheduling"]["onHostMaintenance"] == "MIGRATE"
    assert machine.private_ip == raw["networkInterfaces"][0]["networkIP"] and machine.private_ip.startswith("10.20.0.")
    assert machine.launched_at is not None and machine.launched_at.tzinfo is not None
    assert "serviceAccounts" not in insert["body"]  # the template's account
    # Labels are GCE's characters only: an e-mail address as a user still launches.
    account = "oceanlab-w-ocean@oceanlab-prod.iam.gserviceaccount.com"
    other = _machines(fake).launch(_spec(templates, name="oceanlab-c0ffee-w-2", instance_profile=account,
                                         tags={**TAGS, "user": "Alice@OceanLab.org"}))
    assert other.tags["user"] == "alice-oceanlab-org"
    assert [a["email"] for a in _raw(fake, other.id)["serviceAccounts"]] == [account]  # the user's identity


def test_a_retried_launch_starts_nothing_new(cloud):
    fake, templates, _ = cloud
    machines = _machines(fake)
    first = machines.launch(_spec(templates))
    assert machines.launch(_spec(templates)).id == first.id  # looked up first: no second insert
    assert len(fake.calls("compute.instances.insert")) == 1
    # The answer of an insert lost after Compute acted: sent again with the same requestId,
    # Compute answers with the first operation, and one machine exists.
    fake.fail_next("compute.instances.insert", lost=True)
    second = machines.launch(_spec(templates, name="oceanlab-c0ffee-w-2"))
    inserts = fake.calls("compute.instances.insert")[1:]
    assert len(inserts) == 2 and len({tuple(i["query"]["requestId"]) for i in inserts}) == 1
    assert [i["name"] for i in fake.instances()].count(second.id) == 1
    # Throttled (429) twice, then served: the same request each time; three times: a clear error.
    fake.fail_next("compute.instances.insert", status=429, times=2)
    assert machines.launch(_spec(templates, name="oceanlab-c0ffee-w-3")).alive
    fake.fail_next("compute.instances.insert", status=429, times=3)
    with pytest.raises(MachinesError, match="Rate Limit Exceeded"):
        machines.launch(_spec(templates, name="oceanlab-c0ffee-w-4"))
    assert "oceanlab-c0ffee-w-4" not in [i["name"] for i in fake.instances()]


def test_spot_when_the_profile_allows_it(cloud):
    fake, templates, _ = cloud
    machine = _machines(fake).launch(_spec(templates, spot=True))
    scheduling = _raw(fake, machine.id)["scheduling"]
    assert machine.spot and scheduling["provisioningModel"] == "SPOT"
    assert scheduling["instanceTerminationAction"] == "DELETE" and scheduling["onHostMaintenance"] == "TERMINATE"
    assert fake.refused == []


@pytest.mark.parametrize("reason", [capacity.EXHAUSTED, capacity.EXHAUSTED_WITH_DETAILS, capacity.STOCKOUT])
def test_standard_after_spot_capacity_errors_in_every_zone(cloud, reason):
    fake, templates, _ = cloud
    fake.refuse(provisioning="SPOT", reason=reason)
    machine = _machines(fake).launch(_spec(templates, template=templates["spot"], spot=True))
    assert not machine.spot and machine.zone == ZONES[0]
    assert fake.refused == [(zone, TYPE, "SPOT", reason) for zone in ZONES]  # cheapest first: spot everywhere
    scheduling = _raw(fake, machine.id)["scheduling"]  # the Spot template's settings not inherited
    assert scheduling["provisioningModel"] == "STANDARD" and "instanceTerminationAction" not in scheduling


def test_the_next_zone_after_a_zone_capacity_error(cloud):
    fake, templates, _ = cloud
    fake.refuse(zone=ZONES[0], reason=capacity.STOCKOUT)
    machine = _machines(fake).launch(_spec(templates))
    assert machine.zone == ZONES[1] and fake.refused == [(ZONES[0], TYPE, "STANDARD", capacity.STOCKOUT)]
    ids = [c["query"]["requestId"][0] for c in fake.calls("compute.instances.insert")]
    assert len(set(ids)) == 2  # each zone its own request


def test_a_region_out_of_quota_is_skipped_whole(cloud):
    fake, templates, subnetworks = cloud
    fake.refuse(region="us-central1", reason=capacity.QUOTA_EXCEEDED)
    machines = _machines(fake, zones=[*ZONES, OTHER_REGION_ZONE], subnetworks=subnetworks)
    machine = machines.launch(_spec(templates))
    # Refused once for the region's CPUS quota: its other zones are not asked, the next region is.
    assert fake.refused == [(ZONES[0], TYPE, "STANDARD", capacity.QUOTA_EXCEEDED)]
    assert machine.zone == OTHER_REGION_ZONE and not machine.spot
    assert machine.private_ip.startswith("10.20.1.")  # the other region's subnetwork


def test_a_spot_quota_skips_the_region_for_spot_only(cloud):
    fake, templates, subnetworks = cloud
    fake.refuse(region="us-central1", provisioning="SPOT", reason=capacity.QUOTA_EXCEEDED)  # PREEMPTIBLE_CPUS
    fake.refuse(zone=OTHER_REGION_ZONE, provisioning="SPOT")
    machines = _machines(fake, zones=[*ZONES, OTHER_REGION_ZONE], subnetworks=subnetworks)
    machine = machines.launch(_spec(templates, spot=True))
    assert fake.refused == [(ZONES[0], TYPE, "SPOT", capacity.QUOTA_EXCEEDED),
                            (OTHER_REGION_ZONE, TYPE, "SPOT", capacity.EXHAUSTED)]
    assert machine.zone == ZONES[0] and not machine.spot  # standard: its quota is another one


def test_every_zone_refused_is_a_clear_error_and_launches_nothing(cloud):
    fake, templates, _ = cloud
    fake.refuse(machine_type=TYPE)
    with pytest.raises(MachinesError) as refused:
        _machines(fake).launch(_spec(templates, spot=True))
    message = str(refused.value)
    assert "oceanlab-c0ffee-w-1" in message and templates["small"] in message
    for market in ("spot", "standard"):
        for zone in ZONES:
            assert f"{market} in {zone} (ZONE_RESOURCE_POOL_EXHAUSTED)" in message
    assert len(fake.refused) == 6 and fake.instances() == []


def test_an_error_that_is_not_about_capacity_stops_at_once(cloud):
    fake, templates, _ = cloud
    with pytest.raises(MachinesError, match="no-such-one"):
        _machines(fake).launch(_spec(templates, template=f"projects/{PROJECT}/global/instanceTemplates/no-such-one"))
    assert fake.calls("compute.instances.insert") == []
    with pytest.raises(MachinesError, match="Subnetwork must be in the same region"):
        _machines(fake, zones=[OTHER_REGION_ZONE]).launch(_spec(templates))  # no subnetwork given for it
    assert len(fake.calls("compute.instances.insert")) == 1 and fake.refused == []


def test_a_batch_is_one_bulk_insert_and_moves_to_the_next_zone_whole(cloud):
    fake, templates, _ = cloud
    fake.refuse(zone=ZONES[0])
    batch = _machines(fake).launch_batch(_spec(templates, count=3))
    assert [m.id for m in batch] == [f"oceanlab-c0ffee-w-1-000{i}" for i in (1, 2, 3)]
    assert {m.zone for m in batch} == {ZONES[1]} and all(m.alive for m in batch)
    assert len(fake.calls("compute.instances.bulkInsert")) == 2  # refused once whole, then served whole
    assert fake.calls("compute.instances.insert") == []
    assert all(m.tags["cluster"] == "c0ffee" for m in batch)
    assert _machines(fake).launch_batch(_spec(templates, count=3)) == batch  # again: nothing new
    with pytest.raises(ValueError, match="launch_batch"):
        _machines(fake).launch(_spec(templates, count=2))


def test_list_by_labels_describe_and_terminate(cloud):
    fake, templates, subnetworks = cloud
    machines = _machines(fake, zones=[ZONES[0], OTHER_REGION_ZONE], subnetworks=subnetworks)
    mine = [machines.launch(_spec(templates, name=f"oceanlab-c0ffee-w-{i}")) for i in (1, 2)]
    fake.refuse(zone=ZONES[0])
    theirs = machines.launch(_spec(templates, name="oceanlab-beef-w-1", tags={**TAGS, "cluster": "beef"}))
    assert theirs.zone == OTHER_REGION_ZONE  # listing is across zones
    assert {m.id for m in machines.list({"platform": "oceanlab", "cluster": "c0ffee"})} == {m.id for m in mine}
    assert {m.id for m in machines.list({"platform": "oceanlab"})} == {*(m.id for m in mine), theirs.id}
    assert set(machines.describe([m.id for m in mine] + ["gone"])) == {m.id for m in mine}

    machines.terminate([m.id for m in mine] + ["gone"])
    assert machines.list({"platform": "oceanlab", "cluster": "c0ffee"}) == []
    assert machines.describe([m.id for m in mine]) == {}
    assert machines.describe([theirs.id])[theirs.id].alive
    machines.terminate([])


def test_describe_asks_for_50_names_at_a_time(cloud):
    fake, templates, _ = cloud
    batch = _machines(fake).launch_batch(_spec(templates, count=60))
    fake.requests.clear()
    assert len(_machines(fake).describe([m.id for m in batch])) == 60
    assert len(fake.calls("compute.instances.aggregatedList")) == 2


def test_a_guest_shutdown_leaves_a_stopped_instance_that_the_reaper_deletes(cloud):
    fake, templates, _ = cloud
    machines = _machines(fake)
    worker = machines.launch(_spec(templates))
    hub = machines.launch(_spec(templates, name="oceanlab-hub", tags={"platform": "oceanlab", "role": "hub"}))
    fake.power_off(worker.id)  # e.g. the dead-man switch's poweroff
    (stopped,) = [m for m in machines.list({"platform": "oceanlab"}) if m.id == worker.id]
    assert stopped.state == STOPPED and not stopped.alive
    fake.power_off(hub.id)
    # Stopped is reaped even when still known (nothing restarts it) and within the grace period.
    verdict = reap(machines, "oceanlab", known=lambda: [worker.id], now=lambda: datetime.now(UTC) - timedelta(hours=1))
    assert verdict.terminated == [worker.id] and hub.id in verdict.not_ours
    assert [i["name"] for i in fake.instances()] == [hub.id]


def test_gpu_instances_keep_their_accelerators_and_terminate_on_host_maintenance(cloud):
    fake, templates, _ = cloud
    machines = _machines(fake)
    fake.refuse(provisioning="SPOT")
    for profile, name in (("gpu", "oceanlab-c0ffee-g-1"), ("l4", "oceanlab-c0ffee-g-2")):
        machine = machines.launch(_spec(templates, name=name, template=templates[profile], spot=True))
        raw = _raw(fake, machine.id)
        assert raw["scheduling"]["onHostMaintenance"] == "TERMINATE" and not machine.spot  # the standard fallback
        assert "guestAccelerators" not in fake.calls("compute.instances.insert")[-1]["body"]  # the template's stay
    accelerators = _raw(fake, "oceanlab-c0ffee-g-1")["guestAccelerators"]
    assert [(a["acceleratorType"].rsplit("/", 1)[-1], a["acceleratorCount"]) for a in accelerators] == \
        [("nvidia-tesla-t4", 1)]


def test_the_dead_man_switch_goes_in_front_of_the_startup_script(cloud):
    fake, templates, _ = cloud
    deadman = DeadMan("http://10.20.0.5:8000/services/dask-gateway/api/health", after_seconds=600)
    machine = _machines(fake).launch(_spec(templates, deadman=deadman))
    script = _metadata(_raw(fake, machine.id))["startup-script"]
    assert script.startswith("#!/bin/sh\n") and f"{deadman.hub_url} 600 30" in script
    assert script.index("systemctl enable --now graticule-deadman.service") < script.index("exec /var/lib/graticule")
    assert f"echo {base64.b64encode(SCRIPT.encode()).decode()} | base64 -d" in script


def test_zones_of_the_regions_asked_for_once(cloud):
    fake = cloud[0]
    machines = GCPMachines(PROJECT, regions=["us-east1", "us-central1"], client_options=fake.client_options(),
                           credentials=AnonymousCredentials())
    assert machines.zones() == ["us-east1-b", "us-east1-c", "us-east1-d",
                                "us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"]
    machines.zones()
    assert len(fake.calls("compute.regions.get")) == 2


def test_a_stopped_instance_of_the_same_name_is_not_taken_for_a_launch(cloud):
    fake, templates, _ = cloud
    machines = _machines(fake, zones=ZONES[:1])
    machines.launch(_spec(templates))
    fake.power_off("oceanlab-c0ffee-w-1")
    with pytest.raises(MachinesError, match="exists stopped"):
        machines.launch(_spec(templates))


def test_a_batch_of_a_long_name_keeps_within_63_characters(cloud):
    fake, templates, _ = cloud
    batch = _machines(fake).launch_batch(_spec(templates, name="oceanlab-" + "c" * 54, count=2))  # 63 characters
    assert [len(m.id) for m in batch] == [63, 63] and batch[0].id.endswith("c-0001")
