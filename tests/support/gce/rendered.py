"""Create in the fake what the rendered GCP stack would: its network, subnetworks, static
internal addresses and instance templates (and, when asked, its instances: the hub), from
`main.tf.json`.

The Terraform Google provider is not available offline, so nothing applies the stack; this
translates the provider's attributes into the Compute API's fields (the provider's own
mapping, for the attributes the stack uses) and creates them through the real client, so
the fake's validation sees what Terraform would have sent. A Terraform reference is
resolved to what the provider would put there (`${google_compute_subnetwork.compute.id}`:
`projects/P/regions/R/subnetworks/NAME`; a service account's `.email`; the first of the
region's zones); an attribute the translation does not know fails loudly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from google.cloud import compute_v1

from tests.support.gce.clients import client, wait

SCOPE_ALIASES = {"cloud-platform": "https://www.googleapis.com/auth/cloud-platform"}
_REFERENCE = re.compile(r"\$\{(?:element\()?(data\.)?([\w-]+)\.([\w-]+)\.([\w-]+)(?:, *0\))?\}")
# Provider-only attributes with no field in the API request.
_IGNORED = {"depends_on", "lifecycle", "allow_stopping_for_update", "count", "provider", "log_config",
            "delete_default_routes_on_create"}


class Rendered:
    def __init__(self, fake, stack: Mapping) -> None:
        self.fake, self.stack = fake, stack
        self.resources: Mapping[str, Mapping] = stack.get("resource", {})

    # -- references -------------------------------------------------------------------------

    def resolve(self, value):
        if isinstance(value, str) and (match := _REFERENCE.fullmatch(value)):
            data, kind, name, attribute = match.groups()
            return self._reference(bool(data), kind, name, attribute)
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        return value

    def _reference(self, data: bool, kind: str, name: str, attribute: str) -> str:
        project = self.fake.project
        if data and kind == "google_compute_zones":
            region = self.stack["data"][kind][name]["region"]
            return self.fake.store.regions.get(region, [f"{region}-a"])[0]
        resource = self.resources[kind][name]
        if kind == "google_compute_subnetwork":
            return f"projects/{project}/regions/{resource['region']}/subnetworks/{resource['name']}"
        if kind == "google_compute_network":
            return f"projects/{project}/global/networks/{resource['name']}"
        if kind == "google_service_account" and attribute == "email":
            return f"{resource['account_id']}@{project}.iam.gserviceaccount.com"
        if kind == "google_compute_address":  # `.address` is the IP, as the provider hands it on
            if attribute == "address":
                return resource["address"]
            return f"projects/{project}/regions/{resource['region']}/addresses/{resource['name']}"
        if kind == "google_kms_crypto_key":
            return f"{self.resolve(resource['key_ring'])}/cryptoKeys/{resource['name']}"
        if kind == "google_kms_key_ring":
            return f"projects/{project}/locations/{resource['location']}/keyRings/{resource['name']}"
        raise KeyError(f"no translation for the reference {kind}.{name}.{attribute}")

    # -- creating ---------------------------------------------------------------------------------

    def create(self, instances: bool = False) -> None:
        for network in self.resources.get("google_compute_network", {}).values():
            body = {"name": network["name"], "autoCreateSubnetworks": network.get("auto_create_subnetworks", True),
                    "description": network.get("description", ""),
                    "routingConfig": {"routingMode": network.get("routing_mode", "REGIONAL")}}
            wait(self.fake, client(self.fake, "NetworksClient").insert(
                project=self.fake.project, network_resource=compute_v1.Network.from_json(_dumps(body))))
        for subnetwork in self.resources.get("google_compute_subnetwork", {}).values():
            body = {"name": subnetwork["name"], "ipCidrRange": subnetwork["ip_cidr_range"],
                    "network": self.resolve(subnetwork["network"]), "description": subnetwork.get("description", ""),
                    "privateIpGoogleAccess": subnetwork.get("private_ip_google_access", False)}
            wait(self.fake, client(self.fake, "SubnetworksClient").insert(
                project=self.fake.project, region=subnetwork["region"],
                subnetwork_resource=compute_v1.Subnetwork.from_json(_dumps(body))))
        for address in self.resources.get("google_compute_address", {}).values():
            body = {"name": address["name"], "description": address.get("description", ""),
                    "addressType": address.get("address_type", "EXTERNAL"), "purpose": address.get("purpose"),
                    "subnetwork": self.resolve(address.get("subnetwork")), "address": address.get("address")}
            wait(self.fake, client(self.fake, "AddressesClient").insert(
                project=self.fake.project, region=address["region"], address_resource=compute_v1.Address.from_json(
                    _dumps({key: value for key, value in body.items() if value is not None}))))
        for template in self.resources.get("google_compute_instance_template", {}).values():
            body = {"name": template["name"], "description": template.get("description", ""),
                    "properties": self.properties(template)}
            wait(self.fake, client(self.fake, "InstanceTemplatesClient").insert(
                project=self.fake.project, instance_template_resource=compute_v1.InstanceTemplate.from_json(
                    _dumps(body))))
        if instances:
            for instance in self.resources.get("google_compute_instance", {}).values():
                self.create_instance(instance)

    def create_instance(self, instance: Mapping) -> str:
        zone = self.resolve(instance["zone"])
        body = {"name": instance["name"], **self.properties(instance)}
        wait(self.fake, client(self.fake, "InstancesClient").insert(
            project=self.fake.project, zone=zone, instance_resource=compute_v1.Instance.from_json(_dumps(body))))
        return zone

    def properties(self, resource: Mapping) -> dict:
        """Template properties / instance fields from the provider's attributes."""
        attributes = {key: self.resolve(value) for key, value in resource.items() if key not in _IGNORED}
        known = {"name", "description", "zone", "machine_type", "labels", "tags", "can_ip_forward", "disk",
                 "boot_disk", "network_interface", "service_account", "shielded_instance_config", "scheduling",
                 "guest_accelerator", "metadata", "metadata_startup_script"}
        unknown = set(attributes) - known
        if unknown:
            raise KeyError(f"no translation for {sorted(unknown)} of {resource.get('name')}")
        metadata = dict(attributes.get("metadata") or {})
        if "metadata_startup_script" in attributes:
            metadata["startup-script"] = attributes["metadata_startup_script"]
        disks = [self._disk(d) for d in attributes.get("disk", [])]
        if "boot_disk" in attributes:
            disks.insert(0, self._boot_disk(attributes["boot_disk"]))
        account = attributes.get("service_account")
        properties = {
            "machineType": attributes["machine_type"],
            "labels": attributes.get("labels", {}),
            "tags": {"items": attributes.get("tags", [])},
            "canIpForward": attributes.get("can_ip_forward", False),
            "disks": disks,
            "networkInterfaces": [{"subnetwork": nic["subnetwork"],
                                   **({"networkIP": nic["network_ip"]} if nic.get("network_ip") else {})}
                                  for nic in attributes.get("network_interface", [])],
            "metadata": {"items": [{"key": key, "value": value} for key, value in metadata.items()]},
            "scheduling": _camel(attributes.get("scheduling", {})),
            "shieldedInstanceConfig": _camel(attributes.get("shielded_instance_config", {})),
            "guestAccelerators": [{"acceleratorType": a["type"], "acceleratorCount": a["count"]}
                                  for a in attributes.get("guest_accelerator") or []],
        }
        if account:
            properties["serviceAccounts"] = [{"email": account["email"],
                                              "scopes": [SCOPE_ALIASES.get(s, s) for s in account.get("scopes", [])]}]
        return properties

    @staticmethod
    def _image(image: str) -> str:
        # The provider's `family-project/family` shorthand.
        return image if image.startswith(("projects/", "https://")) else \
            "projects/{}/global/images/family/{}".format(*image.split("/", 1))

    def _disk(self, disk: Mapping) -> dict:
        params = {"sourceImage": self._image(disk["source_image"]), "diskSizeGb": str(disk.get("disk_size_gb", 10)),
                  "diskType": disk.get("disk_type", "pd-standard"), "labels": disk.get("labels", {})}
        attached = {"boot": disk.get("boot", False), "autoDelete": disk.get("auto_delete", True),
                    "initializeParams": params}
        if "disk_encryption_key" in disk:
            attached["diskEncryptionKey"] = {"kmsKeyName": disk["disk_encryption_key"]["kms_key_self_link"]}
        return attached

    def _boot_disk(self, disk: Mapping) -> dict:
        init = disk.get("initialize_params", {})
        attached = {"boot": True, "autoDelete": disk.get("auto_delete", True), "initializeParams": {
            "sourceImage": self._image(init["image"]), "diskSizeGb": str(init.get("size", 10)),
            "diskType": init.get("type", "pd-standard"), "labels": init.get("labels", {})}}
        if "kms_key_self_link" in disk:
            attached["diskEncryptionKey"] = {"kmsKeyName": disk["kms_key_self_link"]}
        return attached


def _camel(attributes: Mapping) -> dict:
    return {re.sub(r"_(\w)", lambda m: m.group(1).upper(), key): value for key, value in attributes.items()}


def _dumps(body: Mapping) -> str:
    import json

    return json.dumps(body)
