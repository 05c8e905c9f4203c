"""Machines on Google Compute Engine, through google-cloud-compute (the `[gcp]` extra),
imported when first used.

A machine is an instance in one zone, launched from a rendered instance template; its
id is its name (unique in the zone). Tags become labels (lower-case, as GCE requires),
so `list` finds a platform's machines by label after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from deploy.cloud.machines import PENDING, RUNNING, STOPPED, STOPPING, Machine, MachinesError, MachineSpec

# GCE's instance statuses in our words (GCE's TERMINATED is a stopped instance; a deleted
# one no longer exists at all).
_STATES = {
    "PROVISIONING": PENDING, "STAGING": PENDING, "RUNNING": RUNNING, "STOPPING": STOPPING,
    "SUSPENDING": STOPPING, "SUSPENDED": STOPPED, "TERMINATED": STOPPED, "REPAIRING": PENDING,
}


class GCPMachines:
    def __init__(self, project: str, zone: str, client: Any = None) -> None:
        self.project, self.zone = project, zone
        self._client = client

    @property
    def instances(self):
        if self._client is None:
            self._client = _compute().InstancesClient()
        return self._client

    def _wait(self, operation, what: str) -> None:
        from google.api_core.exceptions import GoogleAPICallError

        try:
            operation.result()
        except GoogleAPICallError as exc:
            raise MachinesError(f"gcp compute {what} failed: {exc}") from None

    def launch(self, spec: MachineSpec) -> Machine:
        compute = _compute()
        instance = compute.Instance(name=spec.name, labels=_labels(spec.tags))
        if spec.user_data:
            instance.metadata = compute.Metadata(items=[compute.Items(key="user-data", value=spec.user_data)])
        request = compute.InsertInstanceRequest(
            project=self.project, zone=self.zone, instance_resource=instance,
            source_instance_template=spec.template,
        )
        self._wait(self.instances.insert(request=request), f"insert {spec.name}")
        found = self.describe([spec.name])
        if spec.name not in found:
            raise MachinesError(f"gcp compute insert {spec.name}: the instance does not exist after its insert")
        return found[spec.name]

    def launch_batch(self, spec: MachineSpec) -> list[Machine]:
        """One insert per machine (GCE's bulk insert is issue 15's): `<name>-<i>` when count > 1."""
        if spec.count == 1:
            return [self.launch(spec)]
        return [self.launch(replace(spec, name=f"{spec.name}-{i}", count=1)) for i in range(spec.count)]

    def describe(self, ids: Sequence[str]) -> dict[str, Machine]:
        from google.api_core.exceptions import NotFound

        found = {}
        for name in ids:
            try:
                found[name] = _machine(self.instances.get(project=self.project, zone=self.zone, instance=name))
            except NotFound:
                continue
        return found

    def terminate(self, ids: Sequence[str]) -> None:
        from google.api_core.exceptions import NotFound

        for name in ids:
            try:
                operation = self.instances.delete(project=self.project, zone=self.zone, instance=name)
            except NotFound:
                continue  # already gone
            self._wait(operation, f"delete {name}")

    def list(self, tags: Mapping[str, str]) -> list[Machine]:
        condition = " AND ".join(f'(labels.{key} = "{value}")' for key, value in _labels(tags).items())
        request = _compute().ListInstancesRequest(project=self.project, zone=self.zone, filter=condition)
        return [_machine(instance) for instance in self.instances.list(request=request)]


def _compute():
    try:
        from google.cloud import compute_v1
    except ImportError:
        raise MachinesError("google-cloud-compute is not installed: pip install 'graticule[gcp]'") from None
    return compute_v1


def _labels(tags: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value.lower() for key, value in tags.items()}


def _machine(instance) -> Machine:
    interfaces = list(instance.network_interfaces)
    return Machine(
        id=instance.name,
        state=_STATES.get(instance.status, PENDING),
        private_ip=(interfaces[0].network_i_p or None) if interfaces else None,
        tags=dict(instance.labels),
        launched_at=datetime.fromisoformat(instance.creation_timestamp) if instance.creation_timestamp else None,
        zone=str(instance.zone).rsplit("/", 1)[-1] or None,
    )
