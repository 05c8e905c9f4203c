"""The GCP stack for one platform: provider, GCS state backend, every construct, outputs.

The outputs are what the GCP gateway backend and `platform status` read after apply.
"""

from __future__ import annotations

from cdktf import TerraformStack

from modules import naming
from modules.gcp.base import ident, output, ref
from modules.gcp.budgets import Budgets
from modules.gcp.encryption import Encryption
from modules.gcp.firewall import Firewall
from modules.gcp.hub import Hub
from modules.gcp.hub_state import HubState
from modules.gcp.identity import Identity
from modules.gcp.load_balancer import LoadBalancer
from modules.gcp.logs import Logs
from modules.gcp.network import Network
from modules.gcp.project import Project
from modules.gcp.spec import GcpSpec
from modules.gcp.storage import Storage
from modules.gcp.templates import InstanceTemplates
from modules.spec import SCHEDULER_PORT


def build(stack: TerraformStack, spec: GcpSpec) -> None:
    if not spec.worker_access:
        raise ValueError("the gcp stack needs at least one worker access (the templates' default account)")
    project = Project(stack, spec)
    encryption = Encryption(stack, spec, project.number)
    network = Network(stack, spec)
    identity = Identity(stack, spec)
    Firewall(stack, spec, network.network_id)
    default_worker = identity.workers[spec.worker_access[0].key]
    templates = InstanceTemplates(stack, spec, network.subnetwork_id, default_worker, encryption.key_id)
    hub_state = HubState(stack, spec, zone=project.zone, hub_member=identity.hub_member,
                         key_id=encryption.key_id, key_grants=encryption.grants,
                         machine_members={k: f"serviceAccount:{e}" for k, e in identity.workers.items()})
    hub = Hub(stack, spec, project.zone, network.subnetwork_id, identity.hub_email,
              key_id=encryption.key_id, key_grant=encryption.grants["compute"],
              state_disk=ref(hub_state.disk, "self_link"))
    lb = LoadBalancer(stack, spec, hub.group_id)
    storage = Storage(stack, spec, identity.workers, key_id=encryption.key_id,
                      key_grant=encryption.grants["storage"])
    logs = Logs(stack, spec)
    Budgets(stack, spec, project.billing_account, project.number)

    hub_address = ref(lb.address, "address")
    outputs = {
        "hub_url": f"https://{spec.domain}" if spec.domain else f"https://{hub_address}",
        "hub_public_ip": hub_address,
        # where Dask clients reach their schedulers (the load balancer's TCP proxy, SNI to the gateway)
        "gateway_scheduler_address": f"tls://{spec.domain or hub_address}:{SCHEDULER_PORT}",
        "hub_instance": ref(hub.instance, "name"),
        "hub_zone": ref(hub.instance, "zone"),
        "hub_private_ip": hub.private_ip,  # fixed: the same across a hub replacement
        "project": spec.project,
        "region": spec.region,
        "network": network.network_id,
        "subnetwork": network.subnetwork_id,
        "instance_templates": {name: ref(t, "self_link") for name, t in templates.templates.items()},
        **{naming.instance_template_output(name): ref(t, "self_link") for name, t in templates.templates.items()},
        "worker_service_accounts": identity.workers,
        "worker_service_account_by_user": {
            user: identity.workers[access.key] for access in spec.worker_access for user in access.users
        },
        "log_bucket": ref(logs.bucket, "id"),
        "artifacts_bucket": ref(hub_state.artifacts, "name"),
        "hub_state_disk": ref(hub_state.disk, "name"),
        "secret_ids": {key: ref(secret, "secret_id") for key, secret in hub_state.secrets.items()},
        "buckets": storage.buckets,
    }
    for name, value in outputs.items():
        output(ident(name), value)
