"""The load balancer in front of the hub: the platform's only public endpoint.

A global external application load balancer: 443 only, a Google-managed certificate for
`hub.domain` (without one, the operator passes an existing certificate as the
`ssl_certificate` variable), TLS 1.2+ with the RESTRICTED profile, and the hub's instance group as the
backend (health-checked on JupyterHub's health endpoint). Long timeouts keep notebook
websockets open.

Dask clients reach their schedulers on the same address's SCHEDULER_PORT: a global
external proxy network load balancer (TCP proxy, EXTERNAL_MANAGED, so any port) to the
gateway's TLS proxy on the hub, which routes by SNI; TLS is end to end (client to
scheduler), the load balancer only relays bytes.
"""

from __future__ import annotations

from cdktf import TerraformVariable
from constructs import Construct

from modules.gcp.base import ref, res
from modules.gcp.hub import HUB_PORT_NAME, SCHEDULER_PORT_NAME
from modules.gcp.spec import HUB_PORT, GcpSpec
from modules.spec import SCHEDULER_PORT

SCHEME = "EXTERNAL_MANAGED"
WEBSOCKET_TIMEOUT_SEC = 86400


class LoadBalancer(Construct):
    def __init__(self, scope: Construct, spec: GcpSpec, hub_group_id: str) -> None:
        super().__init__(scope, "load_balancer")
        name = f"{spec.name}-hub"
        self.address = address = res(self, "google_compute_global_address", "hub", {
            "name": name,
            "description": f"graticule {spec.name}: public address of the hub",
            "ip_version": "IPV4",
        })
        health = res(self, "google_compute_health_check", "hub", {
            "name": name,
            "description": "JupyterHub's health endpoint",
            "check_interval_sec": 10,
            "timeout_sec": 5,
            "http_health_check": {"port": HUB_PORT, "request_path": "/hub/health"},
            "log_config": {"enable": True},
        })
        backend = res(self, "google_compute_backend_service", "hub", {
            "name": name,
            "description": "the hub VM",
            "protocol": "HTTP",
            "port_name": HUB_PORT_NAME,
            "load_balancing_scheme": SCHEME,
            "timeout_sec": WEBSOCKET_TIMEOUT_SEC,
            "health_checks": [ref(health, "id")],
            "backend": [{"group": hub_group_id, "balancing_mode": "UTILIZATION", "capacity_scaler": 1.0}],
            "log_config": {"enable": True, "sample_rate": 1.0},
        })
        url_map = res(self, "google_compute_url_map", "hub", {
            "name": name,
            "default_service": ref(backend, "id"),
        })
        if spec.domain:
            certificate = ref(res(self, "google_compute_managed_ssl_certificate", "hub", {
                "name": name,
                "managed": {"domains": [spec.domain]},
            }), "id")
        else:
            certificate = TerraformVariable(scope, "ssl_certificate", type="string", description=(
                "self link of an existing google_compute_ssl_certificate for the hub (no hub.domain)"
            )).string_value
        policy = res(self, "google_compute_ssl_policy", "hub", {
            "name": name,
            "description": "TLS 1.2 or later, strong ciphers only",
            "profile": "RESTRICTED",
            "min_tls_version": "TLS_1_2",
        })
        proxy = res(self, "google_compute_target_https_proxy", "hub", {
            "name": name,
            "url_map": ref(url_map, "id"),
            "ssl_certificates": [certificate],
            "ssl_policy": ref(policy, "id"),
        })
        res(self, "google_compute_global_forwarding_rule", "hub_https", {
            "name": f"{name}-https",
            "target": ref(proxy, "id"),
            "ip_address": ref(address, "id"),
            "ip_protocol": "TCP",
            "port_range": "443",
            "load_balancing_scheme": SCHEME,
        })
        self._schedulers(spec, name, address, hub_group_id)

    def _schedulers(self, spec: GcpSpec, name: str, address, hub_group_id: str) -> None:
        health = res(self, "google_compute_health_check", "schedulers", {
            "name": f"{name}-dask",
            "description": "the gateway's scheduler proxy accepts connections",
            "check_interval_sec": 10,
            "timeout_sec": 5,
            "tcp_health_check": {"port": SCHEDULER_PORT},
            "log_config": {"enable": True},
        })
        backend = res(self, "google_compute_backend_service", "schedulers", {
            "name": f"{name}-dask",
            "description": "the gateway's TLS proxy to the Dask schedulers, on the hub VM",
            "protocol": "TCP",
            "port_name": SCHEDULER_PORT_NAME,
            "load_balancing_scheme": SCHEME,
            "timeout_sec": WEBSOCKET_TIMEOUT_SEC,  # a client keeps its scheduler connection for hours
            "health_checks": [ref(health, "id")],
            "backend": [{"group": hub_group_id, "balancing_mode": "UTILIZATION", "capacity_scaler": 1.0}],
            "log_config": {"enable": True, "sample_rate": 1.0},
        })
        proxy = res(self, "google_compute_target_tcp_proxy", "schedulers", {
            "name": f"{name}-dask",
            "backend_service": ref(backend, "id"),
        })
        res(self, "google_compute_global_forwarding_rule", "hub_dask", {
            "name": f"{name}-dask",
            "target": ref(proxy, "id"),
            "ip_address": ref(address, "id"),
            "ip_protocol": "TCP",
            "port_range": str(SCHEDULER_PORT),
            "load_balancing_scheme": SCHEME,
        })
