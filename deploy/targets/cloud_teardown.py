"""`platform destroy`'s own part on a cloud: what the hub made at run time, outside
Terraform's state, and so what Terraform cannot destroy: the notebook servers' instances,
their machine secrets and the users' home volumes or disks.

On gcp all of it goes before Terraform runs (`end_machines`): the instances are deleted,
then every machine secret of the platform (Dask clusters' too, should a gateway have died
holding one), then the home disks once the deleted instances let go of them. On aws the
servers (their security group could not be deleted while they run) and every machine
secret end before Terraform, the home volumes after it. `platform destroy --machines-only`
runs this part alone, without Terraform: for an operator clearing what the hub made, and
for tests, since Terraform's google provider cannot be had offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from render.schema import Platform

Progress = Callable[[str], None]
HOMES_TIMEOUT = 600.0  # seconds for ended servers to let go of their homes


@dataclass
class Ended:
    servers: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    homes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"{len(self.servers)} notebook server(s) ended" if self.servers else "",
                 f"{len(self.secrets)} machine secret(s) deleted" if self.secrets else "",
                 f"{len(self.homes)} home disk(s)/volume(s) deleted" if self.homes else ""]
        return "; ".join(filter(None, parts))


def end_machines(platform: Platform, progress: Progress, *, homes: bool = True) -> Ended:
    """The servers and their secrets (and, with `homes`, the users' homes) of `platform`."""
    if platform.target == "gcp" and platform.cloud.gcp:
        return _end_gcp(platform, progress, homes)
    if platform.target == "aws" and platform.cloud.aws:
        ended = _end_aws_servers(platform, progress)
        if homes:
            ended.homes = delete_aws_homes(platform)
        return ended
    return Ended()


def _end_aws_servers(platform: Platform, progress: Progress) -> Ended:
    from deploy.cloud.aws import AWSMachines
    from deploy.cloud.machine_secrets import MachineSecrets
    from deploy.cloud.machines import NOTEBOOK_ROLE, TAG_PLATFORM, TAG_ROLE, TAG_SERVER

    region = platform.cloud.aws.region
    machines = AWSMachines(region)
    found = machines.list({TAG_PLATFORM: platform.name, TAG_ROLE: NOTEBOOK_ROLE})
    if found:
        progress(f"terminating {len(found)} notebook server instance(s)")
        machines.terminate([m.id for m in found])
    secrets, deleted = MachineSecrets(region, platform.name), []
    for machine in found:  # the key the VM spawner put its secret under
        if machine.tags.get(TAG_SERVER):
            key = "server-" + machine.tags[TAG_SERVER].replace("/", "-")
            secrets.delete(key)
            deleted.append(key)
    # Dask clusters' secrets (and their shards) are the gateway's to delete: any left here, a
    # gateway died holding them.
    left = [key for key in secrets.all_keys() if key not in deleted]
    if left:
        progress(f"deleting {len(left)} machine secret(s) the gateway left")
    for key in left:
        secrets.delete(key)
    return Ended(servers=[m.id for m in found], secrets=deleted + left)


def delete_aws_homes(platform: Platform) -> list[str]:
    from deploy.cloud.home_volumes import AWSHomeVolumes

    return AWSHomeVolumes(platform.cloud.aws.region, platform.name).delete_all(timeout=HOMES_TIMEOUT)


def _end_gcp(platform: Platform, progress: Progress, homes: bool) -> Ended:
    from deploy.cloud.gcp import GCPMachines
    from deploy.cloud.gcp_home_disks import GCPHomeDisks
    from deploy.cloud.gcp_machine_secrets import GcpMachineSecrets
    from deploy.cloud.google_clients import client_arguments
    from deploy.cloud.machines import NOTEBOOK_ROLE, TAG_PLATFORM, TAG_ROLE

    gcp = platform.cloud.gcp
    # The operator's Application Default Credentials (a test's stand-ins: GRATICULE_GOOGLE_ENDPOINTS).
    machines = GCPMachines(gcp.project, regions=[gcp.region], **client_arguments("compute"))
    found = machines.list({TAG_PLATFORM: platform.name, TAG_ROLE: NOTEBOOK_ROLE})
    if found:
        progress(f"deleting {len(found)} notebook server instance(s)")
        machines.terminate([m.id for m in found])
    secrets = GcpMachineSecrets(gcp.project, platform.name, on_vm=False)
    keys = _machine_secret_keys(secrets)
    if keys:
        progress(f"deleting {len(keys)} machine secret(s)")
    for key in keys:
        secrets.delete(key)
    ended = Ended(servers=[m.id for m in found], secrets=keys)
    if homes:
        progress("deleting the users' home disks (once their servers let go)")
        ended.homes = GCPHomeDisks(machines, platform.name).delete_all(timeout=HOMES_TIMEOUT)
    return ended


def _machine_secret_keys(secrets) -> list[str]:
    """Every machine secret's key of the platform, by its id's prefix."""
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    from deploy.cloud.machines import MachinesError
    from modules import naming

    prefix = naming.gcp_machine_secret_prefix(secrets.platform)
    try:
        ids = [secret.name.rsplit("/", 1)[-1] for secret in secrets.client.list_secrets(
            parent=f"projects/{secrets.project}")]
    except (GoogleAPIError, GoogleAuthError, OSError) as error:
        raise MachinesError(f"gcp secretmanager: listing the machine secrets failed: {error}") from None
    return sorted(secret_id[len(prefix):] for secret_id in ids if secret_id.startswith(prefix))
