"""What a test sets up in the fake before the machines layer runs: the platform's network
with a private subnetwork per region, and instance templates (made through the real
client, so they pass the same validation as everything else)."""

from __future__ import annotations

from collections.abc import Mapping

from google.cloud import compute_v1

from tests.support.gce.clients import client, wait

NETWORK = "oceanlab"
SUBNETWORK = "private"
IMAGE = "projects/debian-cloud/global/images/family/debian-12"


def network(fake, ranges: Mapping[str, str], name: str = NETWORK, subnetwork: str = SUBNETWORK) -> dict[str, str]:
    """The network and `subnetwork` in each region of `ranges` ({region: CIDR}); {region: its path}."""
    wait(fake, client(fake, "NetworksClient").insert(
        project=fake.project, network_resource=compute_v1.Network(name=name, auto_create_subnetworks=False)))
    subnetworks = client(fake, "SubnetworksClient")
    paths = {}
    for region, cidr in ranges.items():
        wait(fake, subnetworks.insert(project=fake.project, region=region, subnetwork_resource=compute_v1.Subnetwork(
            name=subnetwork, network=f"global/networks/{name}", ip_cidr_range=cidr,
            private_ip_google_access=True)))
        paths[region] = f"projects/{fake.project}/regions/{region}/subnetworks/{subnetwork}"
    return paths


def template(fake, name: str, machine_type: str, *, region: str = "us-central1", spot: bool = False,
             gpu: tuple[str, int] | None = None, labels: Mapping[str, str] | None = None) -> str:
    """An instance template like the rendered ones (modules/gcp/templates.py); its path."""
    terminate = spot or gpu is not None
    scheduling = compute_v1.Scheduling(
        provisioning_model="SPOT" if spot else "STANDARD", preemptible=spot, automatic_restart=not spot,
        on_host_maintenance="TERMINATE" if terminate else "MIGRATE",
        **({"instance_termination_action": "DELETE"} if spot else {}))
    properties = compute_v1.InstanceProperties(
        machine_type=machine_type,
        disks=[compute_v1.AttachedDisk(
            boot=True, auto_delete=True,
            initialize_params=compute_v1.AttachedDiskInitializeParams(source_image=IMAGE, disk_size_gb=50))],
        network_interfaces=[compute_v1.NetworkInterface(
            subnetwork=f"projects/{fake.project}/regions/{region}/subnetworks/{SUBNETWORK}")],
        labels=dict(labels or {"profile": name}),
        metadata=compute_v1.Metadata(items=[compute_v1.Items(key="block-project-ssh-keys", value="true"),
                                            compute_v1.Items(key="enable-oslogin", value="TRUE")]),
        scheduling=scheduling,
        guest_accelerators=[compute_v1.AcceleratorConfig(accelerator_type=gpu[0], accelerator_count=gpu[1])]
        if gpu else [],
    )
    wait(fake, client(fake, "InstanceTemplatesClient").insert(
        project=fake.project, instance_template_resource=compute_v1.InstanceTemplate(name=name, properties=properties)))
    return f"projects/{fake.project}/global/instanceTemplates/{name}"
