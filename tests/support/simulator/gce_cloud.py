"""What the GCE simulator reads from the fake Compute API, through the real google-cloud-compute
client (REST, anonymous credentials, the fake as api_endpoint): instances, their
subnetworks' ranges, their metadata and their labelled disks."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from google.api_core import exceptions as google_errors
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

# GCE states in which the guest runs no more (a guest's own shutdown leaves TERMINATED).
GONE = {"STOPPING", "STOPPED", "SUSPENDING", "SUSPENDED", "TERMINATED"}
MOUNT_LABEL = "mount-point"


def last(url: str) -> str:
    """The last segment of a Compute resource URL (or of a bare name)."""
    return url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class GceInstance:
    id: str
    name: str
    zone: str
    status: str
    ip: str
    subnetwork: str            # its URL
    machine_type: str
    attributes: dict[str, str] = field(default_factory=dict)  # metadata items
    service_account: str = ""
    scopes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    disks: tuple[str, ...] = ()  # source URLs of its non-boot disks


def mount_point_of(label: str) -> str:
    """A disk's `mount-point` label as a path. GCE label values allow only [a-z0-9_-], so a
    path is written with `_` for each `/` (`_var_lib_graticule`); one with a `/` is taken as is."""
    return label if label.startswith("/") else label.replace("_", "/")


class GceView:
    def __init__(self, url: str, project: str) -> None:
        self.project = project
        options = {"api_endpoint": url}
        common = {"credentials": AnonymousCredentials(), "transport": "rest", "client_options": options}
        self.instances_client = compute_v1.InstancesClient(**common)
        self.subnetworks_client = compute_v1.SubnetworksClient(**common)
        self.disks_client = compute_v1.DisksClient(**common)
        self._cidrs: dict[str, str] = {}

    def instances(self) -> list[GceInstance]:
        found = []
        request = compute_v1.AggregatedListInstancesRequest(project=self.project)
        for _, scoped in self.instances_client.aggregated_list(request=request):
            for raw in scoped.instances:
                interface = raw.network_interfaces[0] if raw.network_interfaces else None
                account = raw.service_accounts[0] if raw.service_accounts else None
                found.append(GceInstance(
                    id=str(raw.id), name=raw.name, zone=last(raw.zone), status=raw.status,
                    ip=interface.network_i_p if interface else "", subnetwork=interface.subnetwork if interface else "",
                    machine_type=last(raw.machine_type),
                    attributes={item.key: item.value for item in raw.metadata.items},
                    service_account=account.email if account else "", scopes=tuple(account.scopes) if account else (),
                    tags=tuple(raw.tags.items), disks=tuple(d.source for d in raw.disks if not d.boot and d.source)))
        return found

    def attributes(self, instance: GceInstance) -> dict[str, str]:
        """The instance's metadata now (an instance deleted meanwhile: none)."""
        try:
            raw = self.instances_client.get(project=self.project, zone=instance.zone, instance=instance.name)
        except google_errors.NotFound:
            return {}
        return {item.key: item.value for item in raw.metadata.items}

    def subnetwork_cidr(self, instance: GceInstance) -> str:
        """The primary range of the instance's subnetwork (a /16 around its IP if the API has none)."""
        url = instance.subnetwork
        if url not in self._cidrs:
            parts = url.split("/")
            try:
                region, name = parts[parts.index("regions") + 1], last(url)
                self._cidrs[url] = self.subnetworks_client.get(project=self.project, region=region,
                                                               subnetwork=name).ip_cidr_range
            except (ValueError, IndexError, google_errors.NotFound):
                return str(ipaddress.ip_network(f"{instance.ip}/16", strict=False))
        return self._cidrs[url]

    def disk_mount_point(self, source: str) -> str | None:
        """Where a disk's `mount-point` label says it is mounted; None without the label."""
        parts = source.split("/")
        try:
            zone = parts[parts.index("zones") + 1]
            disk = self.disks_client.get(project=self.project, zone=zone, disk=last(source))
        except (ValueError, IndexError, google_errors.NotFound):
            return None
        label = disk.labels.get(MOUNT_LABEL)
        return mount_point_of(label) if label else None
