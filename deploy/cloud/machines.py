"""The protocol every cloud's machines implement, and what it says about a machine.

A machine is launched from a template that render made (an AWS launch template, a GCE
instance template) with a name, tags and user data of its own; it is then known by its
id. `describe` answers only for the ids that still exist; a machine that is gone, or
stopping, or terminated, is not `alive`, which is how a VM backend tells the usage
ledger that a scheduler or worker is no longer running.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from deploy.cloud.deadman import DeadMan
from deploy.errors import RuntimeFailure

# Lifecycle states, the same words for every cloud.
PENDING, RUNNING, STOPPING, STOPPED, TERMINATED = "pending", "running", "stopping", "stopped", "terminated"
ALIVE = (PENDING, RUNNING)

# Tag keys of every machine the layer launches. The hub's IAM policy (modules/aws/identity.py)
# refuses a launch without `platform` and `budget` request tags and lets the hub stop only
# instances tagged `platform`; Terraform's hub instance carries `role = hub`.
TAG_PLATFORM, TAG_ROLE, TAG_USER, TAG_BUDGET = "platform", "role", "user", "budget"
TAG_CLUSTER, TAG_SERVER = "cluster", "server"
HUB_ROLE = "hub"
NOTEBOOK_ROLE = "notebook"  # a notebook server's machine (deploy.hub.vm_spawner), known from the hub's database


class MachinesError(RuntimeFailure):
    """The cloud refused or failed a request (the message names the call and the cloud's reason)."""


@dataclass(frozen=True)
class MachineSpec:
    name: str
    template: str  # the rendered launch/instance template to start from
    tags: Mapping[str, str] = field(default_factory=dict)
    user_data: str = ""
    count: int = 1  # identical machines (same tags and user data), in one request where the cloud allows
    spot: bool = False  # the profile allows spot: tried first, on-demand after a capacity error
    deadman: DeadMan | None = None  # shut the machine down when its hub stops answering
    instance_profile: str | None = None  # the cloud identity it runs as (AWS: an instance profile's name)
    # In place of the template's: AWS security group ids, GCP network tags (notebook servers
    # have a group, a tag, of their own)
    security_groups: tuple[str, ...] = ()
    # GCP: {device name: disk path} attached read-write at creation, kept when the machine goes
    disks: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Machine:
    id: str
    state: str
    private_ip: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    launched_at: datetime | None = None  # timezone-aware; None when the cloud does not say
    zone: str | None = None
    spot: bool = False
    ended_at: datetime | None = None  # when it went (stopping/terminated), if the cloud says
    # It ran, was stopped (or suspended) and runs again (GCE dates both): when that earlier run
    # ended and when this one began. Metering charges the runs, not the time in between.
    paused_at: datetime | None = None
    resumed_at: datetime | None = None

    @property
    def alive(self) -> bool:
        return self.state in ALIVE


class Machines(Protocol):
    def launch(self, spec: MachineSpec) -> Machine:
        """One machine (`spec.count` is taken as 1)."""
        ...

    def launch_batch(self, spec: MachineSpec) -> list[Machine]:
        """`spec.count` identical machines, all or none."""
        ...

    def describe(self, ids: Sequence[str]) -> dict[str, Machine]:
        """{id: machine} for the ids that still exist (gone ones are left out)."""
        ...

    def terminate(self, ids: Sequence[str]) -> None: ...

    def list(self, tags: Mapping[str, str]) -> list[Machine]:
        """Machines carrying every one of `tags`, terminated ones left out."""
        ...


def alive(machines: Machines, ids: Sequence[str]) -> list[bool]:
    """For each id, whether its machine exists and is pending or running (one request)."""
    found = machines.describe([machine_id for machine_id in ids if machine_id]) if any(ids) else {}
    return [bool(machine_id) and machine_id in found and found[machine_id].alive for machine_id in ids]
