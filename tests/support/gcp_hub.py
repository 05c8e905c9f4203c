"""The GCP hub as a test stands it up without Terraform (the google provider is not mirrored
here): what the rendered stack (build/terraform/gcp/main.tf.json) would create, made from
its values in the fakes, through the real clients. The network, subnetwork and templates
(tests/support/gce/rendered.py) and the state disk with its `mount-point` label
(tests/support/gcp/compute_disks.py) in the fake Compute API; the hub instance with its
startup-script metadata and the disk attached; the artifacts bucket in gcp-storage-emulator;
the secrets without versions in the Secret Manager fake. Used by tests/test_gcp_hub_e2e.py
and the hub boot benchmark.
"""

from __future__ import annotations

import json
import re

from google.cloud import compute_v1

from tests.support.bootstrap import config
from tests.support.gce.clients import client, wait
from tests.support.gce.rendered import Rendered
from tests.support.gcp.compute_disks import create_rendered_disks

PROJECT = "oceanlab-prod"


def platform_yaml() -> str:
    """The repository's platform.yaml on gcp with local logins (the test has no OAuth provider)."""
    text = config("gcp")
    return re.sub(r"  auth:\n    provider: github[^\n]*\n    github:\n(      [^\n]*\n)+",
                  "  auth:\n    provider: local\n", text)


def unescaped(value: str) -> str:
    """A Terraform string literal's value: `$${` and `%%{` are what Terraform hands on as `${`, `%{`."""
    return value.replace("$${", "${").replace("%%{", "%{")


class RenderedStack:
    """What `terraform apply` would create from main.tf.json, made in the fakes."""

    def __init__(self, main: dict, compute, gcs, secret_client) -> None:
        self.main, self.resources = main, main["resource"]
        self.compute, self.gcs, self.secret_client = compute, gcs, secret_client
        self.rendered = Rendered(compute, main)
        self.hub = self.resources["google_compute_instance"]["hub"]
        self.zone = self.rendered.resolve(self.hub["zone"])

    def create(self) -> str:
        """Network, subnetwork, templates, the state disk, the bucket, the secrets; the bucket's name."""
        self.rendered.create()
        self.subnetwork = self.rendered.resolve(self.hub["network_interface"][0]["subnetwork"])
        self.disks = create_rendered_disks(self.compute, self.main)
        bucket = self.resources["google_storage_bucket"]["artifacts"]["name"]
        self.gcs.client().create_bucket(bucket)
        for secret in self.resources["google_secret_manager_secret"].values():
            self.secret_client.create_secret(parent=f"projects/{PROJECT}", secret_id=secret["secret_id"],
                                             secret={"replication": {"automatic": {}}})
        return bucket

    def insert_hub(self) -> None:
        """The hub instance as the provider would send it: the rendered fields, the startup
        script as Terraform's literal hands it on, the state disk attached by its source."""
        hub = {key: value for key, value in self.hub.items() if key != "attached_disk"}
        hub["metadata"] = {key: unescaped(value) for key, value in hub["metadata"].items()}
        body = {"name": hub["name"], **self.rendered.properties(hub)}
        disk = self.resources["google_compute_disk"]["hub_state"]["name"]
        body["disks"] += [{"boot": False, "autoDelete": False, "source": self.disks[disk],
                           "deviceName": attached["device_name"], "mode": attached["mode"]}
                          for attached in self.hub["attached_disk"]]
        wait(self.compute, client(self.compute, "InstancesClient").insert(
            project=PROJECT, zone=self.zone, instance_resource=compute_v1.Instance.from_json(json.dumps(body))))

    def delete_hub(self) -> None:
        wait(self.compute, client(self.compute, "InstancesClient").delete(
            project=PROJECT, zone=self.zone, instance=self.hub["name"]))
