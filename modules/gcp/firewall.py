"""Firewall rules, mirroring the AWS security groups: the load balancer's Google front
ends reach the hub proxy; schedulers and workers take traffic only from the hub and each
other; notebook servers (a tag of their own) only from the hub's proxy, on NOTEBOOK_PORT,
and reach only the hub's proxy and the scheduler proxy; egress is HTTPS only (through
NAT) or Google APIs only (`egress: none`); anything else is denied, and logged.

GCP's load balancer is not in the VPC: its 443 listener is the forwarding rule, and its
proxies and health checks arrive from Google's published front-end ranges.
"""

from __future__ import annotations

from constructs import Construct

from modules.gcp.base import res
from modules.gcp.network import PRIVATE_GOOGLE_APIS
from modules.gcp.spec import HUB_PORT, GcpSpec
from modules.naming import notebook_tag
from modules.spec import SCHEDULER_PORT

# Google front ends: external application load balancer proxies and health checks.
GOOGLE_LB_RANGES = ("35.191.0.0/16", "130.211.0.0/22")
ANYWHERE = "0.0.0.0/0"
LOWEST_PRIORITY = 65534  # the deny-all rules; everything allowed sits above them
LOG_ALL = {"metadata": "INCLUDE_ALL_METADATA"}
NOTEBOOK_PORT = 8888  # the single-user server on a notebook instance (deploy.hub.vm_spawner)


def hub_tag(platform: str) -> str:
    return f"{platform}-hub"


def worker_tag(platform: str) -> str:
    """The network tag of notebook servers, schedulers and workers.

    Tags rather than service accounts: a rule may name at most 10 service accounts (there
    is one worker account per set of bucket grants), and GCP refuses rules that mix the
    two. Only the hub (and project admins) may set tags, and the hub only on the
    platform's worker instances (see identity), never on itself.
    """
    return f"{platform}-worker"


class Firewall(Construct):
    def __init__(self, scope: Construct, spec: GcpSpec, network_id: str) -> None:
        super().__init__(scope, "firewall")
        self._spec = spec
        self._network = network_id
        hub = [hub_tag(spec.name)]
        workers = [worker_tag(spec.name)]

        self._rule("lb_to_hub", "INGRESS", "hub and scheduler proxies from the load balancer and its health checks",
                   ports=[HUB_PORT, SCHEDULER_PORT], source_ranges=list(GOOGLE_LB_RANGES), target_tags=hub)
        # Dask schedulers heartbeat to the gateway API through the hub proxy: the one port the
        # hub opens to them inside the VPC (notebook servers have a tag and rules of their own).
        self._rule("workers_to_hub", "INGRESS", "gateway API from schedulers and workers",
                   ports=[HUB_PORT], source_tags=workers, target_tags=hub)
        self._rule("hub_to_workers", "INGRESS", "schedulers and workers from the hub",
                   source_tags=hub, target_tags=workers)
        self._rule("workers_to_workers", "INGRESS", "between schedulers and workers",
                   source_tags=workers, target_tags=workers)
        notebooks = [notebook_tag(spec.name)]
        self._rule("hub_to_notebooks", "INGRESS", "single-user servers from the hub proxy",
                   ports=[NOTEBOOK_PORT], source_tags=hub, target_tags=notebooks)
        self._rule("notebooks_to_hub", "INGRESS", "hub and gateway APIs and the scheduler proxy from notebook servers",
                   ports=[HUB_PORT, SCHEDULER_PORT], source_tags=notebooks, target_tags=hub)
        self._rule("deny_ingress", "INGRESS", "everything else", action="deny",
                   priority=LOWEST_PRIORITY, source_ranges=[ANYWHERE])

        self._rule("egress_internal", "EGRESS", "inside the platform's network",
                   destination_ranges=[spec.vpc_cidr])
        if spec.egress == "nat":
            # Package indexes, OAuth providers and Google APIs, over HTTPS only.
            self._rule("egress_https", "EGRESS", "HTTPS out through Cloud NAT",
                       ports=[443], destination_ranges=[ANYWHERE])
        else:
            self._rule("egress_google_apis", "EGRESS", "Google APIs through private.googleapis.com",
                       ports=[443], destination_ranges=[PRIVATE_GOOGLE_APIS])
        self._rule("deny_egress", "EGRESS", "everything else", action="deny",
                   priority=LOWEST_PRIORITY, destination_ranges=[ANYWHERE])

    def _rule(self, key: str, direction: str, description: str, *, action: str = "allow",
              ports: list[int] | None = None, priority: int = 1000, **match: list[str]) -> None:
        # Without ports: every TCP port (schedulers and workers pick theirs at random).
        # A deny rule covers every protocol.
        protocol = {"protocol": "all"} if action == "deny" else {"protocol": "tcp"}
        if ports and action == "allow":
            protocol["ports"] = [str(port) for port in ports]
        res(self, "google_compute_firewall", key, {
            "name": f"{self._spec.name}-{key.replace('_', '-')}",
            "description": description,
            "network": self._network,
            "direction": direction,
            "priority": priority,
            action: [protocol],
            "log_config": LOG_ALL,
            **match,
        })
