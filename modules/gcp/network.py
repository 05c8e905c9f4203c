"""The VPC network: one regional subnetwork with Private Google Access and flow logs;
Cloud Router + NAT for `egress: nat`, or for `egress: none` no internet route at all and
Google APIs only through the private.googleapis.com range (the GCP counterpart of AWS's
VPC endpoints)."""

from __future__ import annotations

from constructs import Construct

from modules.gcp.base import ref, res
from modules.gcp.spec import GcpSpec

# private.googleapis.com: Google APIs reachable without internet access.
PRIVATE_GOOGLE_APIS = "199.36.153.8/30"
PRIVATE_GOOGLE_API_IPS = ("199.36.153.8", "199.36.153.9", "199.36.153.10", "199.36.153.11")


class Network(Construct):
    def __init__(self, scope: Construct, spec: GcpSpec) -> None:
        super().__init__(scope, "network")
        self.network = res(self, "google_compute_network", "main", {
            "name": f"{spec.name}-network",
            "description": f"graticule platform {spec.name}",
            "auto_create_subnetworks": False,
            "routing_mode": "REGIONAL",
            # No default route to the internet when egress is none.
            "delete_default_routes_on_create": spec.egress == "none",
        })
        self.network_id = ref(self.network, "id")
        self.subnetwork = res(self, "google_compute_subnetwork", "compute", {
            "name": f"{spec.name}-compute",
            "description": "hub, notebook servers, Dask schedulers and workers",
            "region": spec.region,
            "network": self.network_id,
            "ip_cidr_range": spec.vpc_cidr,
            "private_ip_google_access": True,
            "log_config": {
                "aggregation_interval": "INTERVAL_5_SEC",
                "flow_sampling": 0.5,
                "metadata": "INCLUDE_ALL_METADATA",
            },
        })
        self.subnetwork_id = ref(self.subnetwork, "id")
        if spec.egress == "nat":
            self._nat(spec)
        else:
            self._private_google_apis(spec)

    def _nat(self, spec: GcpSpec) -> None:
        router = res(self, "google_compute_router", "main", {
            "name": f"{spec.name}-router",
            "region": spec.region,
            "network": self.network_id,
        })
        res(self, "google_compute_router_nat", "main", {
            "name": f"{spec.name}-nat",
            "region": spec.region,
            "router": ref(router, "name"),
            "nat_ip_allocate_option": "AUTO_ONLY",
            "source_subnetwork_ip_ranges_to_nat": "LIST_OF_SUBNETWORKS",
            "subnetwork": [{"name": self.subnetwork_id, "source_ip_ranges_to_nat": ["ALL_IP_RANGES"]}],
            "log_config": {"enable": True, "filter": "ERRORS_ONLY"},
        })

    def _private_google_apis(self, spec: GcpSpec) -> None:
        res(self, "google_compute_route", "private_google_apis", {
            "name": f"{spec.name}-private-google-apis",
            "description": "Google APIs over private.googleapis.com, the only route out",
            "network": self.network_id,
            "dest_range": PRIVATE_GOOGLE_APIS,
            "next_hop_gateway": "default-internet-gateway",
        })
        # Resolve every *.googleapis.com name to the private range, inside this network only.
        zone = res(self, "google_dns_managed_zone", "googleapis", {
            "name": f"{spec.name}-googleapis",
            "dns_name": "googleapis.com.",
            "description": "googleapis.com through private.googleapis.com",
            "visibility": "private",
            "private_visibility_config": {"networks": [{"network_url": self.network_id}]},
        })
        res(self, "google_dns_record_set", "private_googleapis", {
            "managed_zone": ref(zone, "name"),
            "name": "private.googleapis.com.",
            "type": "A",
            "ttl": 300,
            "rrdatas": list(PRIVATE_GOOGLE_API_IPS),
        })
        res(self, "google_dns_record_set", "googleapis_wildcard", {
            "managed_zone": ref(zone, "name"),
            "name": "*.googleapis.com.",
            "type": "CNAME",
            "ttl": 300,
            "rrdatas": ["private.googleapis.com."],
        })
