"""The GCP hub VM's reaper unit (deploy.gateway.reaping) against the fake Compute API and a real
dask-gateway database where the hub VM's gateway keeps it: the platform's machines the
gateway does not know are deleted; the known ones and the hub are kept; the unit's
machines layer is GCP's, in the hub's region, at the endpoint a simulated VM is given.
The unit's own run needs the metadata server's credentials: the e2e's hub VM runs it."""

from __future__ import annotations

import json

import pytest
from google.auth.credentials import AnonymousCredentials

from deploy.cloud.gcp import GCPMachines
from deploy.cloud.google_clients import ENDPOINTS_VARIABLE
from deploy.cloud.machines import MachineSpec
from deploy.gateway import reaping
from deploy.runtime.state import Layout
from deploy.vm import units
from deploy.vm.settings import VmSettings
from tests.support.gce.server import running_fake_compute
from tests.support.gce.setup import network, template
from tests.support.reaper_fleet import gateway_database

PROJECT = "oceanlab-prod"
PLATFORM = "lab"
TAGS = {"platform": PLATFORM, "role": "worker", "user": "alice", "cluster": "c0ffee", "budget": "ocean"}


@pytest.fixture
def gcp_reaper_fleet():
    """A worker the gateway knows, a second one, an orphan, and the hub."""
    with running_fake_compute(PROJECT) as fake:
        network(fake, {"us-central1": "10.20.0.0/24"})
        small = template(fake, f"{PLATFORM}-small", "n2-standard-4")
        machines = GCPMachines(PROJECT, regions=["us-central1"], client_options=fake.client_options(),
                               credentials=AnonymousCredentials())
        ids = {key: machines.launch(MachineSpec(name=f"{PLATFORM}-c0ffee-{key}", template=small, tags=TAGS)).id
               for key in ("known", "known2", "orphan")}
        ids["hub"] = machines.launch(MachineSpec(name=f"{PLATFORM}-hub", template=small,
                                                 tags={"platform": PLATFORM, "role": "hub"})).id
        yield fake, machines, ids


def _settings(tmp_path) -> VmSettings:
    return VmSettings(PLATFORM, "us-central1", "bucket", "graticule-lab", tmp_path / "state",
                      "/dev/disk/by-id/google-graticule-state", cloud="gcp", project=PROJECT)


def test_one_pass_deletes_only_what_the_gateway_does_not_know(gcp_reaper_fleet, tmp_path):
    fake, machines, ids = gcp_reaper_fleet
    settings = _settings(tmp_path)
    Layout(settings.state_dir).gateway.mkdir(parents=True)
    gateway_database(Layout(settings.state_dir).gateway / "gateway.sqlite", ids)
    verdict = reaping.reap_once(settings, machines, grace=0)
    assert verdict is not None and verdict.terminated == [ids["orphan"]]
    fake.settle()
    assert sorted(i["name"] for i in fake.instances()) == sorted([ids["known"], ids["known2"], ids["hub"]])


def test_no_database_deletes_nothing(gcp_reaper_fleet, tmp_path):
    fake, machines, _ = gcp_reaper_fleet
    assert reaping.reap_once(_settings(tmp_path), machines, grace=0) is None
    assert len(fake.instances()) == 4


def test_the_unit_takes_gcps_machines_in_the_hubs_region_at_the_vms_endpoint(gcp_reaper_fleet, tmp_path, monkeypatch):
    """(The unit's own run needs the metadata server's credentials: tests/test_gcp_hub_e2e.py boots it.)"""
    fake, _, _ = gcp_reaper_fleet
    settings = _settings(tmp_path)
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps({"compute": fake.url}))
    monkeypatch.setenv(ENDPOINTS_VARIABLE, str(endpoints))
    path = tmp_path / "vm.json"
    path.write_text(json.dumps({"cloud": "gcp", "project": PROJECT, "platform": PLATFORM, "region": "us-central1",
                                "bucket": "b", "log_group": "g", "state_dir": str(settings.state_dir),
                                "state_device": settings.state_device}))
    machines = reaping.machines_of(VmSettings.load(path))
    assert isinstance(machines, GCPMachines) and machines.regions == ["us-central1"]
    assert machines.project == PROJECT and machines.client_options == {"api_endpoint": fake.url}
    (unit,) = [text for name, text in units.agent_units(path, settings.state_dir, "gcp").items()
               if name == "graticule-reaper.service"]
    command = next(line for line in unit.splitlines() if line.startswith("ExecStart=")).split("=", 1)[1].split()
    assert command[1:] == ["-m", "deploy.gateway.reaping", str(path)]
