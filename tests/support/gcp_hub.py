"""The GCP hub as a test stands it up without Terraform (the google provider is not mirrored
here): what the rendered stack (build/terraform/gcp/main.tf.json) would create, made from
its values in the fakes: the subnetwork, the state disk with its `mount-point` label and
the hub instance with its startup-script metadata (gcpsim's Compute stand-in, which serves
disks), the artifacts bucket (gcp-storage-emulator) and the secrets without versions
(the Secret Manager fake). Used by tests/test_gcp_hub_e2e.py and the hub boot benchmark.
"""

from __future__ import annotations

import re

from google.cloud import compute_v1

from tests.support.bootstrap import config
from tests.support.simulator.gce_probes import IMAGE, ZONE, clients, make_subnetwork

PROJECT = "oceanlab-prod"


def platform_yaml() -> str:
    """The repository's platform.yaml on gcp with local logins (the test has no OAuth provider)."""
    text = config("gcp")
    return re.sub(r"  auth:\n    provider: github[^\n]*\n    github:\n(      [^\n]*\n)+",
                  "  auth:\n    provider: local\n", text)


def _unescaped(value: str) -> str:
    return value.replace("$${", "${").replace("%%{", "%{")


class RenderedStack:
    """What `terraform apply` would create from main.tf.json, made in the fakes."""

    def __init__(self, main: dict, compute, gcs, secret_client) -> None:
        self.resources = main["resource"]
        self.compute, self.gcs, self.secret_client = compute, gcs, secret_client
        self.api = clients(compute)
        self.hub = self.resources["google_compute_instance"]["hub"]

    def create(self) -> str:
        subnetwork = self.resources["google_compute_subnetwork"]["compute"]
        self.subnetwork = make_subnetwork(self.compute, PROJECT, subnetwork["name"], subnetwork["ip_cidr_range"])
        disk = self.resources["google_compute_disk"]["hub_state"]
        self.api["disks"].insert(project=PROJECT, zone=ZONE, disk_resource=compute_v1.Disk(
            name=disk["name"], size_gb=disk["size"], type_=f"zones/{ZONE}/diskTypes/{disk['type']}",
            labels=disk["labels"])).result()
        self.disk = f"projects/{PROJECT}/zones/{ZONE}/disks/{disk['name']}"
        bucket = self.resources["google_storage_bucket"]["artifacts"]["name"]
        self.gcs.client().create_bucket(bucket)
        for secret in self.resources["google_secret_manager_secret"].values():
            self.secret_client.create_secret(parent=f"projects/{PROJECT}", secret_id=secret["secret_id"],
                                             secret={"replication": {"automatic": {}}})
        return bucket

    def insert_hub(self) -> None:
        hub = self.hub
        account = self.resources["google_service_account"]["hub"]["account_id"]
        (attached,) = hub["attached_disk"]
        boot = compute_v1.AttachedDiskInitializeParams(
            source_image=IMAGE, disk_size_gb=hub["boot_disk"]["initialize_params"]["size"])
        instance = compute_v1.Instance(
            name=hub["name"], machine_type=f"zones/{ZONE}/machineTypes/{hub['machine_type']}", labels=hub["labels"],
            disks=[compute_v1.AttachedDisk(boot=True, auto_delete=True, initialize_params=boot),
                   compute_v1.AttachedDisk(boot=False, source=self.disk, device_name=attached["device_name"],
                                           mode=attached["mode"])],
            network_interfaces=[compute_v1.NetworkInterface(subnetwork=self.subnetwork)],
            metadata=compute_v1.Metadata(items=[compute_v1.Items(key=k, value=_unescaped(v))
                                                for k, v in hub["metadata"].items()]),
            service_accounts=[compute_v1.ServiceAccount(email=f"{account}@{PROJECT}.iam.gserviceaccount.com",
                                                        scopes=["https://www.googleapis.com/auth/cloud-platform"])])
        self.api["instances"].insert(project=PROJECT, zone=ZONE, instance_resource=instance).result()

    def delete_hub(self) -> None:
        self.api["instances"].delete(project=PROJECT, zone=ZONE, instance=self.hub["name"]).result()
