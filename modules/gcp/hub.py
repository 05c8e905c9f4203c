"""The hub VM (JupyterHub, dask-gateway, usage ledger) and the instance group that puts it
behind the load balancer. Private IP only, and a fixed one (`hub_private_ip`, reserved as a
static internal address); hardened like the worker templates. It boots from its startup
script (modules.gcp.startup_script) with its state disk attached (modules.gcp.hub_state)."""

from __future__ import annotations

import ipaddress

from constructs import Construct

from modules import naming
from modules.base import terraform_literal
from modules.gcp.base import hub_name, ref, res
from modules.gcp.firewall import hub_tag
from modules.gcp.spec import HUB_PORT, GcpSpec
from modules.gcp.startup_script import hub_startup_script
from modules.gcp.templates import BOOT_DISK_GB, HARDENED_METADATA, IMAGE, SCOPES, SHIELDED_VM
from modules.spec import SCHEDULER_PORT

HUB_PORT_NAME = "hub"
SCHEDULER_PORT_NAME = "dask"  # the gateway's TLS proxy to the schedulers (SNI-routed)


def hub_private_ip(subnetwork_cidr: str) -> str:
    """The hub's fixed address: the last one GCP lets an instance have in the subnetwork
    (Google keeps the network and gateway addresses and the last two), easy to recognise.
    Fixed, so that a replaced hub answers where every running machine's dead-man switch and
    worker launcher already ask (AWS's counterpart: modules.aws.network.hub_private_ip).
    Reserved as a static internal address, so no other instance is ever given it."""
    return str(ipaddress.IPv4Network(subnetwork_cidr)[-3])


class Hub(Construct):
    def __init__(self, scope: Construct, spec: GcpSpec, zone: str, subnetwork_id: str, account: str, *,
                 key_id: str, key_grant: str, state_disk: str) -> None:
        super().__init__(scope, "hub")
        # Outlives the instance: a replacement (destroy, then create) takes the same address.
        self.address = res(self, "google_compute_address", "hub", {
            "name": f"{hub_name(spec.name)}-internal",
            "description": f"graticule {spec.name}: the hub's fixed private address",
            "region": spec.region,
            "subnetwork": subnetwork_id,
            "address_type": "INTERNAL",
            "purpose": "GCE_ENDPOINT",
            "address": hub_private_ip(spec.vpc_cidr),
        })
        self.private_ip = ref(self.address, "address")
        self.instance = res(self, "google_compute_instance", "hub", {
            "name": hub_name(spec.name),
            "description": f"graticule {spec.name}: JupyterHub, dask-gateway, usage ledger",
            "zone": zone,
            "machine_type": spec.hub_machine_type,
            "labels": {"role": "hub"},
            "tags": [hub_tag(spec.name)],
            "can_ip_forward": False,
            "allow_stopping_for_update": True,
            "boot_disk": {
                "auto_delete": True,
                "initialize_params": {
                    "image": IMAGE,
                    "size": BOOT_DISK_GB,
                    "type": "pd-balanced",
                    "labels": {**spec.labels, "role": "hub"},  # default_labels do not reach disks
                },
                "kms_key_self_link": key_id,
            },
            # No access_config block: no external IP.
            "network_interface": [{"subnetwork": subnetwork_id, "network_ip": self.private_ip}],
            # A separate disk: a replaced hub gets the same one (modules.gcp.hub_state).
            "attached_disk": [{"source": state_disk, "device_name": naming.GCP_STATE_DEVICE_NAME,
                               "mode": "READ_WRITE", "kms_key_self_link": key_id}],
            "service_account": {"email": account, "scopes": SCOPES},
            "shielded_instance_config": SHIELDED_VM,
            # The startup script as metadata (changed in place), not `metadata_startup_script`
            # (which replaces the instance); no secret and nothing that changes with users.
            "metadata": {**HARDENED_METADATA, "startup-script": terraform_literal(
                hub_startup_script(spec.name, spec.project, spec.region))},
            "depends_on": [key_grant],
        })
        self.group = res(self, "google_compute_instance_group", "hub", {
            "name": hub_name(spec.name),
            "description": "the hub VM, as the load balancer's backend",
            "zone": zone,
            "instances": [ref(self.instance, "self_link")],
            "named_port": [{"name": HUB_PORT_NAME, "port": HUB_PORT},
                           {"name": SCHEDULER_PORT_NAME, "port": SCHEDULER_PORT}],
        })
        self.group_id = ref(self.group, "id")
