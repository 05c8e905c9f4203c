"""Dask clients reach their schedulers on GCP through the rendered load balancer: the hub's
address, port 8786, a TCP proxy (TLS end to end, SNI-routed by the gateway's proxy on the
hub) whose front ends the firewall admits, and the address in Terraform's outputs."""

from __future__ import annotations

from modules.spec import SCHEDULER_PORT
from tests.support.gcp_render import resources, stack


def test_schedulers_share_the_hubs_address_through_a_tcp_proxy() -> None:
    rendered = stack("nat")
    rules = resources(rendered, "google_compute_global_forwarding_rule")
    https, dask = rules["hub_https"], rules["hub_dask"]
    assert (dask["port_range"], dask["ip_address"]) == (str(SCHEDULER_PORT), https["ip_address"])
    assert dask["target"] == "${google_compute_target_tcp_proxy.schedulers.id}"
    proxy = resources(rendered, "google_compute_target_tcp_proxy")["schedulers"]
    assert proxy["backend_service"] == "${google_compute_backend_service.schedulers.id}"
    service = resources(rendered, "google_compute_backend_service")["schedulers"]
    assert (service["protocol"], service["port_name"]) == ("TCP", "dask")
    assert service["backend"][0]["group"] == "${google_compute_instance_group.hub.id}"
    health = resources(rendered, "google_compute_health_check")["schedulers"]
    assert health["tcp_health_check"] == {"port": SCHEDULER_PORT}
    (group,) = resources(rendered, "google_compute_instance_group").values()
    assert {"name": "dask", "port": SCHEDULER_PORT} in group["named_port"]
    firewall = resources(rendered, "google_compute_firewall")["lb_to_hub"]
    assert str(SCHEDULER_PORT) in firewall["allow"][0]["ports"]
    assert rendered["output"]["gateway_scheduler_address"]["value"] == f"tls://hub.oceanlab.org:{SCHEDULER_PORT}"
