"""The gateway on AWS: schedulers and workers on EC2 instances from the profiles' launch
templates (see `deploy.gateway.vm`), their credentials in Secrets Manager
(`deploy.cloud.machine_secrets`), their software from the artifacts bucket's wheel cache
(`deploy.cloud.machine_boot`).

Terraform's outputs (read by `VMBackend.outputs`) also give each user's worker instance
profile; machines reach the gateway's API at the hub's private address (Terraform's output)
through the hub's proxy, the one port the hub opens inside the VPC. A synced environment
(`Cluster(sync=True)`) is built and published by this gateway (`deploy.gateway.vm_synced`);
its machines install it from the bucket the same way.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from deploy.cloud.aws import AWSMachines
from deploy.cloud.aws_clients import shared_client
from deploy.cloud.machine_boot import WORKDIR, MachineBoot, machine_user_data
from deploy.cloud.machine_secrets import MachineSecrets
from deploy.gateway import spot_notice
from deploy.gateway.vm_synced import SyncingVMBackend
from deploy.vm.stores import S3Objects

SPOT_NOTICE_FILE = f"{WORKDIR}/graticule_spot_notice.py"  # a `dask worker --preload` on spot machines


class AWSBackend(SyncingVMBackend):
    @property
    def region(self) -> str:
        return self.worker_template(self.spec.dask.default_profile)["region"]

    def make_machines(self) -> AWSMachines:
        # Into the platform's private subnets, found by their tags (one per zone).
        return AWSMachines(region=self.region, platform=self.spec.name)

    def make_secrets(self) -> MachineSecrets:
        return MachineSecrets(self.region, self.spec.name)

    def template_of(self, worker_template: dict) -> str:
        return worker_template["launch_template_name"]

    def instance_profile_of(self, username: str) -> str | None:
        return (self.outputs.get("worker_instance_profile_by_user") or {}).get(username)

    @cached_property
    def artifacts(self) -> S3Objects:
        return S3Objects(shared_client("s3", self.region), self.artifacts_bucket)

    def _spot(self, cluster) -> bool:
        return bool(self.worker_template(self._profile(cluster)).get("spot"))

    def worker_machine_command(self, cluster) -> list[str]:
        """On a spot profile the worker watches for EC2's interruption notice and retires
        itself, its data moved to the other workers first (`spot_notice.py`)."""
        command = super().worker_machine_command(cluster)
        return [*command, "--preload", SPOT_NOTICE_FILE] if self._spot(cluster) else command

    def _secret_values(self, cluster) -> dict:
        values = super()._secret_values(cluster)
        if self._spot(cluster):
            # Written by the machine's boot with the secret's other files: user data, where
            # the worker's command is, has room for 16 KB only, and the launcher takes most.
            values["files"][SPOT_NOTICE_FILE] = Path(spot_notice.__file__).read_text()
        return values

    def machines_per_secret(self) -> int:
        # a resource policy names at most this many instances: bigger clusters read shards
        return self.secrets.per_secret

    def boot_user_data(self, cluster, command: list[str], environment: dict[str, str],
                       secret_key: str | None = None) -> str:
        key = self.environment_key(cluster)
        return machine_user_data(MachineBoot(
            platform=self.spec.name, region=self.region, bucket=self.artifacts_bucket,
            secret=self.secrets.name(secret_key or self.secret_key(cluster)), command=command,
            environment=key, env=environment,
            # without a locked environment, Dask comes from the platform's own wheelhouse
            platform_software=key is None,
        ))

