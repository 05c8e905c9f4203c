"""The cloud under the VM spawner (deploy.hub.vm_spawner): what differs between AWS and GCP
when a notebook server's machine is launched, its home found and attached, its secret kept.

- AWS: an EBS home volume (deploy.cloud.home_volumes) made in the first private subnet's
  zone, attached once the instance runs; the instance from the profile's launch template,
  in the notebooks' security group, as the user's instance profile; the secret in Secrets
  Manager, read by the machine with its role's credentials.
- GCP: a persistent home disk (deploy.cloud.gcp_home_disks) made in the first zone of the
  platform's region, attached when the instance is created (so the start first waits until
  the previous server's instance let go of it); the instance from the profile's instance
  template, with the notebooks' network tag in place of the workers' (modules.gcp.firewall),
  as the user's worker service account; the secret in Secret Manager
  (deploy.cloud.gcp_machine_secrets), which the machine reads through the hub's
  machine-secret broker with its instance identity token (deploy.cloud.gcp_machine_boot).

Each is made with the spawner and reads the spawner's clients (`machines`, `homes`,
`machine_secrets`: tests set their own), its published outputs and worker templates.
Calls block: the spawner makes them in a worker thread.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from deploy.cloud import gcp_home_disks, home_volumes
from deploy.cloud.aws_clients import shared_client
from deploy.cloud.google_clients import ENDPOINTS_VARIABLE
from deploy.cloud.home_volumes import HomeVolume
from deploy.cloud.machine_boot import MachineBoot, machine_user_data
from deploy.cloud.machines import Machine, MachinesError, MachineSpec
from modules import naming
from render.hub_config import GATEWAY_PATH

if TYPE_CHECKING:
    from deploy.hub.vm_spawner import VMSpawner


class AwsNotebooks:
    home_device = home_volumes.HOME_DEVICE

    def __init__(self, spawner: VMSpawner) -> None:
        self.spawner = spawner

    def make_machines(self):
        from deploy.cloud.aws import AWSMachines
        region = self.spawner.region
        return AWSMachines(region, client=shared_client("ec2", region), platform=self.spawner.platform_name)

    def make_homes(self):
        region = self.spawner.region
        return home_volumes.AWSHomeVolumes(region, self.spawner.platform_name, size_gib=self.spawner.home_size_gib,
                              client=shared_client("ec2", region))

    def make_secrets(self):
        from deploy.cloud.machine_secrets import MachineSecrets

        region = self.spawner.region
        return MachineSecrets(region, self.spawner.platform_name, client=shared_client("secretsmanager", region))

    def home(self, user: str, labels: dict[str, str]) -> HomeVolume:
        self.subnets = self.spawner.machines.subnets()
        if not self.subnets:
            raise MachinesError(f"no private subnets of platform {self.spawner.platform_name}")
        volume = self.spawner.homes.ensure(user, next(iter(self.subnets)), labels)
        if volume.zone not in self.subnets:
            raise MachinesError(f"{user}'s home volume {volume.id} is in {volume.zone}, "
                                "where the platform has no private subnet")
        return volume

    def template_of(self, worker_template: dict) -> str:
        return worker_template["launch_template_name"]

    def identity(self, user: str) -> str | None:
        return self.spawner.outputs().get("worker_instance_profile_by_user", {}).get(user)

    def network_groups(self) -> tuple[str, ...]:
        return tuple(filter(None, [self.spawner.outputs().get("security_group_ids", {}).get("notebooks")]))

    def home_disks(self, home: HomeVolume) -> dict[str, str]:
        return {}  # attached once the instance runs (`after_running`)

    def boot_script(self, boot: MachineBoot) -> str:
        return machine_user_data(boot)

    def secret_name(self, key: str) -> str:
        return self.spawner.machine_secrets.name(key)

    def launch(self, spec: MachineSpec, home: HomeVolume) -> Machine:
        from deploy.cloud.aws import AWSMachines

        machines = self.spawner.machines
        # Pinned to the home volume's zone: an EBS volume attaches only there.
        pinned = AWSMachines(machines.region, client=machines.ec2, subnets={home.zone: self.subnets[home.zone]},
                             platform=self.spawner.platform_name)
        return pinned.launch(spec)

    def after_running(self, machine: Machine, home: HomeVolume) -> None:
        homes = self.spawner.homes
        homes.wait_available(home.id, self.spawner.attach_timeout, self.spawner.poll_every)
        homes.attach(home.id, machine.id)


class GcpNotebooks:
    home_device = gcp_home_disks.HOME_DEVICE

    def __init__(self, spawner: VMSpawner) -> None:
        self.spawner = spawner

    @property
    def project(self) -> str:
        return self.spawner.outputs().get("project") or self.spawner.worker_template_any()["project"]

    def make_machines(self):
        from deploy.cloud.gcp import GCPMachines, on_vm_arguments

        # The region's zones, asked of Compute once; on the hub VM as the instance's account.
        return GCPMachines(self.project, regions=[self.spawner.region], **on_vm_arguments())

    def make_homes(self):
        spawner = self.spawner
        return gcp_home_disks.GCPHomeDisks(spawner.machines, spawner.platform_name, size_gib=spawner.home_size_gib,
                                           kms_key=self._disk_key())

    def make_secrets(self):
        from deploy.cloud.gcp_machine_secrets import GcpMachineSecrets

        # On the hub VM as the instance's account; a test's stand-ins are named in the endpoints file.
        return GcpMachineSecrets(self.project, self.spawner.platform_name,
                                 on_vm=ENDPOINTS_VARIABLE not in os.environ)

    def _disk_key(self) -> str | None:
        """The platform's key, as its instance templates' boot disks name it."""
        template = self.template_of(self.spawner.worker_template_any())
        for disk in self.spawner.machines.template(template).get("disks", []):
            if key := (disk.get("diskEncryptionKey") or {}).get("kmsKeyName"):
                return key
        return None

    def home(self, user: str, labels: dict[str, str]) -> HomeVolume:
        zones = self.spawner.machines.zones()
        return self.spawner.homes.ensure(user, zones[0], labels)

    def template_of(self, worker_template: dict) -> str:
        project, name = worker_template["project"], worker_template["instance_template_name"]
        return f"projects/{project}/global/instanceTemplates/{name}"

    def identity(self, user: str) -> str | None:
        return self.spawner.outputs().get("worker_service_account_by_user", {}).get(user)

    def network_groups(self) -> tuple[str, ...]:
        return (naming.notebook_tag(self.spawner.platform_name),)

    def home_disks(self, home: HomeVolume) -> dict[str, str]:
        return {gcp_home_disks.HOME_DEVICE_NAME: self.spawner.homes.source(home)}

    def boot_script(self, boot: MachineBoot) -> str:
        from deploy.cloud.gcp_machine_boot import GcpMachineBoot, gcp_machine_startup_script

        # The broker is in the gateway's API, which machines reach through the hub's proxy.
        api_url = f"{self.spawner.hub_private_url}{GATEWAY_PATH}/api"
        return gcp_machine_startup_script(GcpMachineBoot(
            platform=boot.platform, bucket=boot.bucket, api_url=api_url, secret=boot.secret, command=boot.command,
            environment=boot.environment, env=boot.env, platform_software=boot.platform_software))

    def secret_name(self, key: str) -> str:
        return key  # the machine asks the hub's broker for it by key

    def launch(self, spec: MachineSpec, home: HomeVolume) -> Machine:
        machines, spawner = self.spawner.machines, self.spawner
        # The disk is named at creation: free first (the last server's instance may still be going).
        spawner.homes.wait_available(home, spawner.attach_timeout, spawner.poll_every)
        # Pinned to the home disk's zone: a zonal disk attaches only there.
        return machines.in_zones([home.zone]).launch(spec)

    def after_running(self, machine: Machine, home: HomeVolume) -> None:
        return None  # attached at creation


CLOUDS = {"aws": AwsNotebooks, "gcp": GcpNotebooks}
