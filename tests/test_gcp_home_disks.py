"""Users' home disks on GCP (deploy/cloud/gcp_home_disks.py) and a machine launched with its
home attached, through the real google-cloud-compute client against the fake Compute API
(tests/support/gce/: no Compute Engine emulator exists; the fake validates every request
against Compute's discovery document, and refuses, as Compute does, to attach a disk that
another instance holds read-write or to delete a disk in use)."""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials

from deploy.cloud.gcp import GCPMachines
from deploy.cloud.gcp_home_disks import DISK_TYPE, HOME_DEVICE_NAME, GCPHomeDisks, home_disk_name
from deploy.cloud.machines import MachinesError, MachineSpec
from modules.naming import HOME_VOLUME_GIB
from tests.support.gce.server import running_fake_compute
from tests.support.gce.setup import network, template
from tests.support.gcp import compute_disks  # noqa: F401  (the fake's disks API)

PROJECT = "oceanlab-prod"
ZONE, OTHER_ZONE = "us-central1-b", "us-central1-c"
KEY = f"projects/{PROJECT}/locations/us-central1/keyRings/oceanlab/cryptoKeys/disks"
TAGS = {"platform": "oceanlab", "role": "notebook", "user": "alice", "budget": "ocean", "server": "alice"}


@pytest.fixture
def cloud():
    with running_fake_compute(PROJECT) as fake:
        network(fake, {"us-central1": "10.20.0.0/24"})
        small = template(fake, "oceanlab-small", "n2-standard-4")
        fake.requests.clear()
        yield fake, small


def _machines(fake, zones=(ZONE,)) -> GCPMachines:
    return GCPMachines(PROJECT, list(zones), client_options=fake.client_options(), credentials=AnonymousCredentials())


def _homes(fake, platform: str = "oceanlab") -> GCPHomeDisks:
    return GCPHomeDisks(_machines(fake), platform, kms_key=KEY)


def _server(homes: GCPHomeDisks, small: str, name: str, user: str = "alice") -> MachineSpec:
    home = homes.find(user)
    return MachineSpec(name=name, template=small, tags={**TAGS, "user": user}, user_data="#!/bin/sh\n",
                       security_groups=("oceanlab-notebook",), disks={HOME_DEVICE_NAME: homes.source(home)})


def test_one_encrypted_labelled_disk_per_user_made_once(cloud):
    fake, _ = cloud
    homes = _homes(fake)
    assert homes.find("alice") is None
    made = homes.ensure("alice", ZONE, {"budget": "ocean"})
    again = homes.ensure("alice", OTHER_ZONE)  # found by its labels, wherever it is: not made twice
    assert again == made and made.zone == ZONE and made.state == "available" and made.attached_to is None
    (insert,) = fake.calls("compute.disks.insert")
    body = insert["body"]
    assert body["name"] == made.id == "oceanlab-home-alice" == home_disk_name("oceanlab", "alice")
    assert body["sizeGb"] == str(HOME_VOLUME_GIB) and body["type"].endswith(f"/diskTypes/{DISK_TYPE}")
    assert body["diskEncryptionKey"] == {"kmsKeyName": KEY}
    assert body["labels"] == {"platform": "oceanlab", "user": "alice", "role": "home", "budget": "ocean",
                              "managed-by": "graticule", "mount-point": "_home_alice"}
    assert insert["query"]["requestId"]  # a retried insert is the same request
    bob = homes.ensure("bob", OTHER_ZONE)
    assert bob.zone == OTHER_ZONE and homes.find("bob") == bob and homes.find("alice") == made
    assert _homes(fake, "otherplatform").find("alice") is None  # another platform's users are its own


def test_a_server_launches_with_its_home_attached_and_the_disk_outlives_it(cloud):
    fake, small = cloud
    homes, machines = _homes(fake), _machines(fake)
    homes.ensure("alice", ZONE)
    machine = machines.launch(_server(homes, small, "oceanlab-nb-alice-1"))
    (raw,) = [i for i in fake.instances() if i["name"] == machine.id]
    boot, home = raw["disks"]
    assert boot["boot"] and boot["autoDelete"]  # the template's boot disk is kept
    assert not home["boot"] and not home["autoDelete"] and home["deviceName"] == HOME_DEVICE_NAME
    assert home["source"].endswith(f"/zones/{ZONE}/disks/oceanlab-home-alice") and home["mode"] == "READ_WRITE"
    assert raw["tags"]["items"] == ["oceanlab-notebook"]  # in place of the template's worker tag
    assert homes.find("alice").attached_to == machine.id and homes.find("alice").state == "in-use"

    # Compute refuses the disk to a second instance while the first has it
    with pytest.raises(MachinesError, match="already being used"):
        machines.launch(_server(homes, small, "oceanlab-nb-alice-2"))
    with pytest.raises(MachinesError, match="still in-use"):
        homes.wait_available(homes.find("alice"), timeout=0)

    machines.terminate([machine.id])
    assert homes.wait_available(homes.find("alice"), timeout=30, every=0.2).state == "available"
    second = machines.launch(_server(homes, small, "oceanlab-nb-alice-3"))
    assert homes.find("alice").attached_to == second.id  # the same home, on the next server


def test_destroy_deletes_every_home_of_the_platform_once_free(cloud):
    fake, small = cloud
    homes, machines = _homes(fake), _machines(fake)
    homes.ensure("alice", ZONE)
    homes.ensure("bob", OTHER_ZONE)
    _homes(fake, "otherplatform").ensure("alice", ZONE)
    machine = machines.launch(_server(homes, small, "oceanlab-nb-alice-1"))
    with pytest.raises(MachinesError, match=r"oceanlab-home-alice \(attached to oceanlab-nb-alice-1\)"):
        homes.delete_all(timeout=0)
    assert homes.find("bob") is not None  # refused whole: nothing deleted
    machines.terminate([machine.id])
    assert sorted(homes.delete_all(timeout=30, every=0.2)) == ["oceanlab-home-alice", "oceanlab-home-bob"]
    assert homes.find("alice") is None and homes.find("bob") is None
    assert _homes(fake, "otherplatform").find("alice") is not None
    assert homes.delete_all() == []


def test_names_gce_accepts_for_any_user():
    assert home_disk_name("oceanlab", "alice") == "oceanlab-home-alice"
    odd = home_disk_name("oceanlab", "Data_Sci")
    assert odd.startswith("oceanlab-home-data-sci-") and odd != home_disk_name("oceanlab", "data-sci")
    long = home_disk_name("oceanlab", "x" * 80)
    assert len(long) <= 63 and long.startswith("oceanlab-home-")
