"""Security groups: the load balancers take 80, 443 and the scheduler port from anywhere and
reach only the hub's HUB_PORT and SCHEDULER_PORT; the hub takes only what it must;
schedulers and workers only the hub and each other; notebook servers (a group of their
own) only the hub's proxy, on NOTEBOOK_PORT, and reach only the hub's proxy (its API, the
gateway) and the scheduler proxy. Rules are separate resources so the groups can
reference each other without a cycle."""

from __future__ import annotations

from constructs import Construct

from modules.aws.base import name_tag, ref, res
from modules.aws.spec import HUB_PORT, AwsSpec
from modules.spec import SCHEDULER_PORT

ANYWHERE = "0.0.0.0/0"
# Dask's ports: scheduler 8786, dashboard 8787, then the random high ports of workers and
# nannies (and 8888 for notebook servers). Nothing below 8786 (no SSH, no RDP) is open.
DASK_PORTS = (8786, 65535)
NOTEBOOK_PORT = 8888  # the single-user server on a notebook instance (deploy.hub.vm_spawner)


class SecurityGroups(Construct):
    def __init__(self, scope: Construct, spec: AwsSpec, vpc_id: str, s3_prefix_list_id: str) -> None:
        super().__init__(scope, "security")
        self._spec = spec

        def group(key: str, description: str):
            return res(self, "aws_security_group", key, {
                "name": f"{spec.name}-{key}",
                "description": description,
                "vpc_id": vpc_id,
                "tags": name_tag(f"{spec.name}-{key}"),
            })

        # (A group's description cannot change without replacing it: the first wording stays.)
        self.lb = group("lb", "graticule load balancer: HTTPS from the internet to the hub")
        self.hub = group("hub", "graticule hub: JupyterHub, dask-gateway, usage ledger")
        self.workers = group("workers", "graticule notebook servers, Dask schedulers and workers")
        self.notebooks = group("notebooks", "graticule notebook servers: only the hub proxy reaches them")
        lb, hub, workers = (ref(g, "id") for g in (self.lb, self.hub, self.workers))
        notebooks = ref(self.notebooks, "id")

        self._ingress("lb_http", lb, "HTTP from the internet (answered with a redirect to HTTPS)", 80,
                      cidr=ANYWHERE)
        self._ingress("lb_https", lb, "HTTPS from the internet", 443, cidr=ANYWHERE)
        self._ingress("lb_scheduler", lb, "Dask TLS from the internet", SCHEDULER_PORT, cidr=ANYWHERE)
        self._egress("lb_to_hub", lb, "to the hub proxy", HUB_PORT, group=hub)
        self._egress("lb_to_scheduler_proxy", lb, "to the gateway's scheduler proxy", SCHEDULER_PORT, group=hub)

        self._ingress("hub_from_lb", hub, "hub proxy from the load balancer", HUB_PORT, group=lb)
        self._ingress("hub_scheduler_from_lb", hub, "gateway scheduler proxy from the load balancer",
                      SCHEDULER_PORT, group=lb)
        # Notebook servers call the hub API and Dask schedulers heartbeat to the gateway
        # API, both through the hub proxy: the one port the hub opens inside the VPC.
        self._ingress("hub_from_workers", hub, "hub and gateway APIs from notebooks and schedulers",
                      HUB_PORT, group=workers)
        self._egress("hub_to_workers", hub, "to notebook servers, schedulers and workers", DASK_PORTS,
                     group=workers)

        self._ingress("workers_from_hub", workers, "from the hub and gateway proxy", DASK_PORTS, group=hub)
        self._ingress("workers_from_workers", workers, "between schedulers and workers", DASK_PORTS,
                      group=workers)
        self._egress("workers_to_workers", workers, "between schedulers and workers", DASK_PORTS, group=workers)
        self._egress("workers_to_hub", workers, "to the hub and gateway APIs", HUB_PORT, group=hub)

        # Notebook servers: the hub's proxy in (users' browsers, the culler's checks go through
        # it); out, the hub API and the gateway (HUB_PORT) and the scheduler proxy (Dask clients).
        self._ingress("notebooks_from_hub", notebooks, "single-user server from the hub proxy", NOTEBOOK_PORT,
                      group=hub)
        self._egress("hub_to_notebooks", hub, "to notebook servers", NOTEBOOK_PORT, group=notebooks)
        self._ingress("hub_from_notebooks", hub, "hub and gateway APIs from notebook servers", HUB_PORT,
                      group=notebooks)
        self._ingress("hub_scheduler_from_notebooks", hub, "gateway scheduler proxy from notebook servers",
                      SCHEDULER_PORT, group=notebooks)
        self._egress("notebooks_to_hub", notebooks, "to the hub and gateway APIs", HUB_PORT, group=hub)
        self._egress("notebooks_to_scheduler_proxy", notebooks, "to the gateway's scheduler proxy",
                     SCHEDULER_PORT, group=hub)

        self.endpoints = None
        if spec.egress == "nat":
            # Package indexes, OAuth providers and AWS APIs, over HTTPS only.
            self._egress("hub_https", hub, "HTTPS out through NAT", 443, cidr=ANYWHERE)
            self._egress("workers_https", workers, "HTTPS out through NAT", 443, cidr=ANYWHERE)
            self._egress("notebooks_https", notebooks, "HTTPS out through NAT", 443, cidr=ANYWHERE)
        else:
            self.endpoints = group("endpoints", "graticule VPC interface endpoints")
            endpoints = ref(self.endpoints, "id")
            for source_key, source in (("hub", hub), ("workers", workers), ("notebooks", notebooks)):
                self._ingress(f"endpoints_from_{source_key}", endpoints, f"AWS APIs from the {source_key}",
                              443, group=source)
                self._egress(f"{source_key}_to_endpoints", source, "AWS APIs through interface endpoints",
                             443, group=endpoints)
                self._egress(f"{source_key}_to_s3", source, "S3 through the gateway endpoint",
                             443, prefix_list=s3_prefix_list_id)

    def _rule(self, kind: str, key: str, group_id: str, description: str, port: int | tuple[int, int],
              cidr: str | None, group: str | None, prefix_list: str | None) -> None:
        ports = port if isinstance(port, tuple) else (port, port)
        attributes: dict[str, object] = {
            "security_group_id": group_id,
            "description": description,
            "ip_protocol": "tcp",
            "from_port": ports[0],
            "to_port": ports[1],
            "cidr_ipv4": cidr,
            "referenced_security_group_id": group,
            "prefix_list_id": prefix_list,
            "tags": name_tag(f"{self._spec.name}-{key}"),
        }
        res(self, f"aws_vpc_security_group_{kind}_rule", key, attributes)

    def _ingress(self, key: str, group_id: str, description: str, port: int | tuple[int, int], *,
                 cidr: str | None = None, group: str | None = None, prefix_list: str | None = None) -> None:
        self._rule("ingress", key, group_id, description, port, cidr, group, prefix_list)

    def _egress(self, key: str, group_id: str, description: str, port: int | tuple[int, int], *,
                cidr: str | None = None, group: str | None = None, prefix_list: str | None = None) -> None:
        self._rule("egress", key, group_id, description, port, cidr, group, prefix_list)
