"""Where a Compute Engine launch is tried, in which order, and the instance each try asks for.

Order, as on AWS (`placement.py`): Spot first when the profile allows it, in every zone
given (regions in their order, each region's zones in name order), then standard
provisioning likewise. A capacity error (`ZONE_RESOURCE_POOL_EXHAUSTED`, its
`_WITH_DETAILS` variant, a stockout named in the operation's error) moves on to the next
zone; `QUOTA_EXCEEDED` is a region's, so the rest of that region is skipped (for Spot
alone when the quota is the preemptible one); any other error stops.

Each try carries a `requestId`: a UUID derived from the machine and the try, so the same
try sent again (a lost answer, a restarted gateway) is the same request to Compute, which
answers it with the first operation instead of starting a second machine.

The request overrides the template's fields it must (Compute takes a field given in the
request over the template's, whole): labels (the template's and the machine's, set at
creation, so budgets and the reaper see them from the first second), metadata (the
template's hardening items and the machine's `startup-script`), scheduling (complete for
the provisioning model: a Spot fallback to standard must not inherit the template's Spot
settings), given a region's subnetwork, the network interface and, for a machine that
names them, its network tags and the disks attached at creation (a notebook server's home:
the template's disks are repeated, since a request's `disks` replaces them). The template's
accelerators are not repeated: they stay, and `onHostMaintenance` stays TERMINATE for them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from deploy.cloud.machines import TAG_PLATFORM, MachineSpec

SPOT, STANDARD = "SPOT", "STANDARD"
CAPACITY_CODES = frozenset({"ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"})
QUOTA_CODES = frozenset({"QUOTA_EXCEEDED"})
STARTUP_SCRIPT = "startup-script"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
# Machine families whose GPUs are built in (no guestAccelerators in the template): they cannot live-migrate.
_GPU_FAMILIES = ("a2-", "a3-", "a4-", "g2-", "g4-")
_NAMESPACE = uuid.UUID("1b0f6f4e-5d0c-4a5e-9a3e-6b8c1f1e7a15")  # graticule's, for requestIds
_LABEL_BAD = re.compile(r"[^a-z0-9_-]")


class Refused(Exception):
    """Compute had no capacity, or no quota, for a try."""

    def __init__(self, code: str, message: str, quota_metric: str = "") -> None:
        super().__init__(message)
        self.code, self.quota_metric = code, quota_metric

    @property
    def quota(self) -> bool:
        return self.code in QUOTA_CODES


def region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


@dataclass(frozen=True)
class Attempt:
    market: str  # SPOT or STANDARD
    zone: str
    subnetwork: str | None  # the region's private subnetwork; None: the template's
    request_id: str

    @property
    def region(self) -> str:
        return region_of(self.zone)

    def describe(self) -> str:
        return f"{'spot' if self.market == SPOT else 'standard'} in {self.zone}"


def request_id(spec: MachineSpec, market: str, zone: str) -> str:
    """Stable for one machine's one try; each try has its own (another zone is another request)."""
    key = "\0".join([spec.tags.get(TAG_PLATFORM, ""), spec.name, spec.template, str(spec.count), market, zone])
    return str(uuid.uuid5(_NAMESPACE, key))


def attempts(spec: MachineSpec, zones: list[str], subnetworks: Mapping[str, str]) -> list[Attempt]:
    markets = (SPOT, STANDARD) if spec.spot else (STANDARD,)
    return [Attempt(market, zone, subnetworks.get(region_of(zone)), request_id(spec, market, zone))
            for market in markets for zone in zones]


class Skips:
    """Regions a quota error ruled out for the rest of a launch."""

    def __init__(self) -> None:
        self._skipped: set[tuple[str, str]] = set()  # (market, region)

    def add(self, attempt: Attempt, refused: Refused) -> None:
        preemptible_only = "preemptible" in refused.quota_metric.lower()
        markets = (attempt.market,) if preemptible_only else (SPOT, STANDARD)
        self._skipped |= {(market, attempt.region) for market in markets}

    def skips(self, attempt: Attempt) -> bool:
        return (attempt.market, attempt.region) in self._skipped


def label_key(key: str) -> str:
    key = _LABEL_BAD.sub("_", key.lower())[:63]
    return key if key[:1].isalpha() else f"k{key}"[:63]


def label_value(value: str) -> str:
    """GCE label values: lower-case letters, digits, `_` and `-`, at most 63 (anything else becomes `-`)."""
    return _LABEL_BAD.sub("-", value.lower())[:63]


def labels(tags: Mapping[str, str]) -> dict[str, str]:
    return {label_key(key): label_value(value) for key, value in tags.items()}


def is_gpu(properties: Mapping) -> bool:
    machine_type = str(properties.get("machineType", "")).rsplit("/", 1)[-1]
    return bool(properties.get("guestAccelerators")) or machine_type.startswith(_GPU_FAMILIES)


def scheduling(properties: Mapping, market: str) -> dict:
    """The template's scheduling made complete for `market`."""
    base = dict(properties.get("scheduling") or {})
    if market == SPOT:
        base.update(provisioningModel=SPOT, preemptible=True, automaticRestart=False,
                    onHostMaintenance="TERMINATE", instanceTerminationAction="DELETE")
    else:
        base.pop("instanceTerminationAction", None)
        base.update(provisioningModel=STANDARD, preemptible=False, automaticRestart=True,
                    onHostMaintenance="TERMINATE" if is_gpu(properties) else "MIGRATE")
    return base


def instance_body(spec: MachineSpec, attempt: Attempt, properties: Mapping, startup_script: str,
                  name: str | None = None) -> dict:
    """The instance fields of an insert (or a bulk insert's `instanceProperties`, without `name`)."""
    items = [item for item in (properties.get("metadata") or {}).get("items", []) if item["key"] != STARTUP_SCRIPT]
    if startup_script:
        items.append({"key": STARTUP_SCRIPT, "value": startup_script})
    body: dict = {
        "labels": {**(properties.get("labels") or {}), "managed-by": "graticule", **labels(spec.tags)},
        "metadata": {"items": items},
        "scheduling": scheduling(properties, attempt.market),
    }
    if name is not None:
        body["name"] = name
    if attempt.subnetwork:
        body["networkInterfaces"] = [{"subnetwork": attempt.subnetwork}]  # no accessConfigs: no external IP
    if spec.instance_profile:
        body["serviceAccounts"] = [{"email": spec.instance_profile, "scopes": SCOPES}]
    if spec.security_groups:
        body["tags"] = {"items": list(spec.security_groups)}
    if spec.disks:
        body["disks"] = [*template_disks(properties, attempt.zone), *(
            {"boot": False, "autoDelete": False, "mode": "READ_WRITE", "deviceName": device, "source": source}
            for device, source in spec.disks.items())]
    return body


def template_disks(properties: Mapping, zone: str) -> list[dict]:
    """The template's disks as an insert in `zone` repeats them (a request's `disks` replaces
    the template's whole): a template may name a disk type bare, an instance may not."""
    disks = []
    for disk in properties.get("disks") or []:
        disk = {key: value for key, value in disk.items() if key not in ("kind", "index")}
        params = dict(disk.get("initializeParams") or {})
        if params.get("diskType") and "/" not in params["diskType"]:
            params["diskType"] = f"zones/{zone}/diskTypes/{params['diskType']}"
        if params:
            disk["initializeParams"] = params
        disks.append(disk)
    return disks


def refusal(errors: list[dict]) -> Refused | None:
    """A capacity or quota refusal among an operation's errors (JSON), else None."""
    for error in errors:
        code, message = error.get("code", ""), error.get("message", "")
        details = error.get("errorDetails") or []
        reasons = {(d.get("errorInfo") or {}).get("reason") for d in details}
        if code in QUOTA_CODES:
            metric = next(((d.get("quotaInfo") or {}).get("metricName", "") for d in details if d.get("quotaInfo")), "")
            return Refused(code, message, metric or message)
        if code in CAPACITY_CODES or "resource_availability" in reasons or "STOCKOUT" in message:
            return Refused(code, message)
    return None
