"""Helpers for tests that drive the GCE simulator: instances and disks created through the
fake Compute API with google-cloud-compute, as the machines layer and the rendered stack
would (the network: tests.support.gce.setup.network)."""

from __future__ import annotations

from google.cloud import compute_v1

from tests.support.gce.clients import client, wait
from tests.support.gce.setup import network
from tests.support.gcp import compute_disks  # noqa: F401  (the fake's disks API: disks insert/get/delete)

REGION = "us-central1"
ZONE = "us-central1-a"
IMAGE = "projects/debian-cloud/global/images/family/debian-12"


def make_subnetwork(compute, cidr: str = "10.20.0.0/20") -> str:
    """The platform's network with one subnetwork in REGION; returns the subnetwork's path."""
    return network(compute, {REGION: cidr})[REGION]


def insert_instance(compute, name: str, subnetwork: str, startup_script: str = "", *, disks: tuple[str, ...] = (),
                    account: str = "", metadata: dict[str, str] | None = None, tags: tuple[str, ...] = ()) -> None:
    """An instance with a startup script (and extra metadata) and the given disks attached."""
    items = [compute_v1.Items(key="startup-script", value=startup_script)] if startup_script else []
    items += [compute_v1.Items(key=k, value=v) for k, v in (metadata or {}).items()]
    boot = compute_v1.AttachedDiskInitializeParams(source_image=IMAGE, disk_size_gb=10)
    attached = [compute_v1.AttachedDisk(boot=True, auto_delete=True, initialize_params=boot)]
    attached += [compute_v1.AttachedDisk(boot=False, source=d, device_name=d.rsplit("/", 1)[-1]) for d in disks]
    scopes = ["https://www.googleapis.com/auth/cloud-platform"]
    instance = compute_v1.Instance(
        name=name, machine_type=f"zones/{ZONE}/machineTypes/e2-small", disks=attached,
        network_interfaces=[compute_v1.NetworkInterface(subnetwork=subnetwork)],
        metadata=compute_v1.Metadata(items=items), labels={"graticule": "sim"}, tags=compute_v1.Tags(items=list(tags)),
        service_accounts=[compute_v1.ServiceAccount(email=account, scopes=scopes)] if account else [])
    wait(compute, client(compute, "InstancesClient").insert(project=compute.project, zone=ZONE,
                                                            instance_resource=instance))


def delete_instance(compute, name: str) -> None:
    wait(compute, client(compute, "InstancesClient").delete(project=compute.project, zone=ZONE, instance=name))


def get_instance(compute, name: str) -> compute_v1.Instance:
    return client(compute, "InstancesClient").get(project=compute.project, zone=ZONE, instance=name)


def make_disk(compute, name: str, mount_point: str) -> str:
    """A disk labelled with where the simulator mounts it (`/` written `_`); returns its path."""
    disk = compute_v1.Disk(name=name, size_gb=10, type_=f"zones/{ZONE}/diskTypes/pd-balanced",
                           labels={"mount-point": mount_point.replace("/", "_")})
    wait(compute, client(compute, "DisksClient").insert(project=compute.project, zone=ZONE, disk_resource=disk))
    return f"projects/{compute.project}/zones/{ZONE}/disks/{name}"
