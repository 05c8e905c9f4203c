"""The platform's log bucket, kept `integrations.logs.retention_days`, and the sink that
routes the platform's VM, load balancer, flow, firewall and NAT logs into it; and Cloud
Audit Logs for data access to Cloud Storage, so that every read and write of a bucket
object is logged (the current form of GCS access logging)."""

from __future__ import annotations

from constructs import Construct

from modules.gcp.base import ref, res
from modules.gcp.spec import GcpSpec


def log_filter(spec: GcpSpec) -> str:
    return " OR ".join([
        f'(resource.type="gce_instance" AND labels."compute.googleapis.com/resource_name"=~"^{spec.name}-")',
        f'(resource.type="http_load_balancer" AND resource.labels.backend_service_name="{spec.name}-hub")',
        f'(resource.type="gce_subnetwork" AND resource.labels.subnetwork_name="{spec.name}-compute")',
        f'(resource.type="nat_gateway" AND resource.labels.gateway_name="{spec.name}-nat")',
    ])


class Logs(Construct):
    def __init__(self, scope: Construct, spec: GcpSpec) -> None:
        super().__init__(scope, "logs")
        self.bucket = bucket = res(self, "google_logging_project_bucket_config", "platform", {
            "project": spec.project,
            "location": spec.region,
            "bucket_id": f"{spec.name}-logs",
            "description": f"graticule {spec.name}: hub, workers, load balancer, network",
            "retention_days": spec.log_retention_days,
        })
        res(self, "google_logging_project_sink", "platform", {
            "name": f"{spec.name}-logs",
            "description": "the platform's logs into its own bucket",
            "destination": f"logging.googleapis.com/{ref(bucket, 'id')}",
            "filter": log_filter(spec),
            "unique_writer_identity": True,
        })
        res(self, "google_project_iam_audit_config", "storage", {
            "project": spec.project,
            "service": "storage.googleapis.com",
            "audit_log_config": [{"log_type": "DATA_READ"}, {"log_type": "DATA_WRITE"}],
        })
