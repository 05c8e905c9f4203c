"""Capacity and quota refusals, in the shapes Compute gives them.

A refused insert is accepted (an Operation comes back) and its operation ends DONE with
the error, as on Google: `ZONE_RESOURCE_POOL_EXHAUSTED` (503), the `_WITH_DETAILS`
variant with `'(resource type:compute)'`, a stockout of the `_WITH_DETAILS` kind that
names the state and carries an `errorInfo` of reason `resource_availability`, and
`QUOTA_EXCEEDED` (403) for a whole region with its `quotaInfo`.
"""

from __future__ import annotations

from dataclasses import dataclass

EXHAUSTED = "ZONE_RESOURCE_POOL_EXHAUSTED"
EXHAUSTED_WITH_DETAILS = "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"
STOCKOUT = "STOCKOUT"
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
REASONS = (EXHAUSTED, EXHAUSTED_WITH_DETAILS, STOCKOUT, QUOTA_EXCEEDED)
_HELP = {"help": {"links": [{"description": "Troubleshooting documentation",
                             "url": "https://cloud.google.com/compute/docs/resource-error"}]}}


def region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


@dataclass(frozen=True)
class Refusal:
    zone: str | None = None
    region: str | None = None
    machine_type: str | None = None
    provisioning: str | None = None  # SPOT or STANDARD
    reason: str = EXHAUSTED

    def matches(self, zone: str, machine_type: str, provisioning: str) -> bool:
        return ((self.zone is None or self.zone == zone)
                and (self.region is None or self.region == region_of(zone))
                and (self.machine_type is None or self.machine_type == machine_type)
                and (self.provisioning is None or self.provisioning == provisioning))


def operation_error(reason: str, project: str, zone: str, machine_type: str, provisioning: str) -> dict:
    """The Operation fields (`error`, `httpErrorStatusCode`, `httpErrorMessage`) of a refusal."""
    where = f"projects/{project}/zones/{zone}"
    not_enough = f"The zone '{where}' does not have enough resources available to fulfill the request."
    if reason == QUOTA_EXCEEDED:
        metric = "PREEMPTIBLE_CPUS" if provisioning == "SPOT" else "CPUS"
        region = region_of(zone)
        error = {"code": QUOTA_EXCEEDED, "message": f"Quota '{metric}' exceeded.  Limit: 24.0 in region {region}.",
                 "errorDetails": [{"quotaInfo": {"metricName": f"compute.googleapis.com/{metric.lower()}",
                                                 "limitName": f"{metric}-per-project-region",
                                                 "dimensions": {"region": region}, "limit": 24}}, _HELP]}
        return {"error": {"errors": [error]}, "httpErrorStatusCode": 403, "httpErrorMessage": "FORBIDDEN"}
    if reason == EXHAUSTED:
        error = {"code": EXHAUSTED, "message": f"{not_enough}  Try a different zone, or try again later.",
                 "errorDetails": [_HELP]}
    elif reason == EXHAUSTED_WITH_DETAILS:
        error = {"code": EXHAUSTED_WITH_DETAILS, "message": f"{not_enough}  '(resource type:compute)'.",
                 "errorDetails": [_HELP]}
    elif reason == STOCKOUT:
        info = {"domain": "compute.googleapis.com", "reason": "resource_availability",
                "metadatas": {"zone": zone, "vmType": machine_type}}
        error = {"code": EXHAUSTED_WITH_DETAILS,
                 "message": f"{not_enough}  'NULL:0/NULL:0/NULL:0 (state:STOCKOUT, sub-state:none)'.",
                 "errorDetails": [_HELP, {"errorInfo": info}, {"localizedMessage": {
                     "locale": "en-US",
                     "message": f"A {machine_type} VM instance is currently unavailable in the {zone} zone."}}]}
    else:
        raise ValueError(f"unknown refusal reason {reason!r}: one of {', '.join(REASONS)}")
    return {"error": {"errors": [error]}, "httpErrorStatusCode": 503, "httpErrorMessage": "SERVICE UNAVAILABLE"}
