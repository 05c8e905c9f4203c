"""Helpers for tests that drive the GCE simulator: a network, a subnetwork and instances
created through the fake Compute API with google-cloud-compute, as the rendered stack
(network, subnetwork) and the machines layer (instances) would."""

from __future__ import annotations

from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

REGION = "us-central1"
ZONE = "us-central1-a"
IMAGE = "projects/debian-cloud/global/images/family/debian-12"


def clients(compute) -> dict:
    common = {"credentials": AnonymousCredentials(), "transport": "rest", "client_options": compute.client_options()}
    return {"instances": compute_v1.InstancesClient(**common), "networks": compute_v1.NetworksClient(**common),
            "subnetworks": compute_v1.SubnetworksClient(**common), "disks": compute_v1.DisksClient(**common)}


def make_subnetwork(compute, project: str, name: str = "sim", cidr: str = "10.20.0.0/20") -> str:
    """A custom-mode network and one subnetwork; returns the subnetwork's URL."""
    api = clients(compute)
    api["networks"].insert(project=project, network_resource=compute_v1.Network(
        name=name, auto_create_subnetworks=False)).result()
    network = f"projects/{project}/global/networks/{name}"
    api["subnetworks"].insert(project=project, region=REGION, subnetwork_resource=compute_v1.Subnetwork(
        name=name, network=network, ip_cidr_range=cidr, private_ip_google_access=True)).result()
    return f"projects/{project}/regions/{REGION}/subnetworks/{name}"


def insert_instance(compute, project: str, name: str, subnetwork: str, startup_script: str = "", *,
                    disks: list[str] = (), account: str = "", metadata: dict[str, str] | None = None) -> None:
    """An instance with a startup script (and extra metadata) and the given disks attached."""
    items = [compute_v1.Items(key="startup-script", value=startup_script)] if startup_script else []
    items += [compute_v1.Items(key=k, value=v) for k, v in (metadata or {}).items()]
    boot = compute_v1.AttachedDiskInitializeParams(source_image=IMAGE, disk_size_gb=10)
    attached = [compute_v1.AttachedDisk(boot=True, auto_delete=True, initialize_params=boot)]
    attached += [compute_v1.AttachedDisk(boot=False, source=d, device_name=d.rsplit("/", 1)[-1]) for d in disks]
    accounts = [compute_v1.ServiceAccount(email=account, scopes=["https://www.googleapis.com/auth/cloud-platform"])] \
        if account else []
    instance = compute_v1.Instance(
        name=name, machine_type=f"zones/{ZONE}/machineTypes/e2-small", disks=attached,
        network_interfaces=[compute_v1.NetworkInterface(subnetwork=subnetwork)],
        metadata=compute_v1.Metadata(items=items), service_accounts=accounts, labels={"graticule": "sim"})
    clients(compute)["instances"].insert(project=project, zone=ZONE, instance_resource=instance).result()


def delete_instance(compute, project: str, name: str) -> None:
    clients(compute)["instances"].delete(project=project, zone=ZONE, instance=name).result()


def make_disk(compute, project: str, name: str, mount_point: str) -> str:
    """A disk labelled with where the simulator mounts it (`/` written `_`); returns its URL."""
    clients(compute)["disks"].insert(project=project, zone=ZONE, disk_resource=compute_v1.Disk(
        name=name, size_gb=10, type_=f"zones/{ZONE}/diskTypes/pd-balanced",
        labels={"mount-point": mount_point.replace("/", "_")})).result()
    return f"projects/{project}/zones/{ZONE}/disks/{name}"
