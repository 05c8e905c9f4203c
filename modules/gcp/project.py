"""The google provider, the GCS state backend, and the project the platform lives in."""

from __future__ import annotations

from cdktf import Fn, GcsBackend, TerraformStack
from constructs import Construct

from modules.base import pinned_provider
from modules.ci import STATE_PREFIX
from modules.gcp.base import data, ref, res
from modules.gcp.spec import GcpSpec

PROVIDER_VERSION = "~> 6.50"  # the schema tests/data/google_provider_schema.json was taken from

# APIs the stack and the running platform call; never disabled on destroy, since other
# workloads in the project may use them too.
SERVICES = (
    "billingbudgets.googleapis.com",
    "cloudkms.googleapis.com",
    "compute.googleapis.com",
    "dns.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
)


class Project(Construct):
    def __init__(self, stack: TerraformStack, spec: GcpSpec) -> None:
        super().__init__(stack, "project")
        provider = pinned_provider(stack, "google", PROVIDER_VERSION)
        provider.add_override("project", spec.project)
        provider.add_override("region", spec.region)
        provider.add_override("default_labels", spec.labels)
        # Bill API quota to the project itself: the billing budgets API requires a quota
        # project when Terraform runs with user credentials.
        provider.add_override("user_project_override", True)
        provider.add_override("billing_project", spec.project)
        GcsBackend(stack, bucket=spec.state_bucket, prefix=STATE_PREFIX.format(name=spec.name))

        self.project = data(self, "google_project", "this", {"project_id": spec.project})
        self.zones = data(self, "google_compute_zones", "available", {"region": spec.region, "status": "UP"})
        # The hub's zone: the region's first zone that is up (not every region has an `-a`).
        self.zone = Fn.element(self.zones.get_list_attribute("names"), 0)
        self.number = ref(self.project, "number")
        self.billing_account = ref(self.project, "billing_account")
        for service in SERVICES:
            res(self, "google_project_service", service.split(".")[0], {
                "service": service,
                "disable_on_destroy": False,
            })
