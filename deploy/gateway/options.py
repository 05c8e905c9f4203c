"""Cluster options offered to each user, validated on the server, and the Python that
runs a cluster's scheduler and workers.

Built from the rendered `platform.json` (see `render.gateway_config`): a user is offered
only the profiles and environments their groups grant, and asking for anything else is
refused with a message that says what they may use instead. `sync_environment` is set by
`graticule.Cluster(sync=True)` once the sync API (deploy.gateway.api) has built it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from dask_gateway_server.models import User
from dask_gateway_server.options import Integer, Options, Select, String

from deploy.environments import runtime
from render.gateway_spec import GatewaySpec

SYNC_OPTION = "sync_environment"


class Granted(Select):
    """A choice among what platform.yaml grants this user, with a clear refusal."""

    def __init__(self, field: str, granted: list[str], username: str, **kwargs: Any):
        super().__init__(field, granted, **kwargs)
        self.username = username

    def validate(self, x: object) -> str:
        if isinstance(x, str) and x in self.options:
            return x
        granted = ", ".join(self.options)
        raise ValueError(
            f"{self.field} {x!r} is not granted to user {self.username!r} "
            f"(granted by their groups in platform.yaml: {granted})"
        )


class WorkerCount(Integer):
    def validate(self, x: object) -> int:
        if not isinstance(x, int) or isinstance(x, bool) or x < 0:
            raise ValueError(f"{self.field} must be a whole number >= 0, got {x!r}")
        if self.max is not None and x > self.max:
            raise ValueError(
                f"{self.field}: at most {self.max} workers per cluster (dask.max_workers in platform.yaml), got {x}"
            )
        return x


class SyncEnvironment(String):
    """A synced environment of this user (built through the sync API), or empty."""

    def __init__(self, username: str):
        super().__init__(SYNC_OPTION, default="", label="Synced environment (set by graticule)")
        self.username = username

    def validate(self, x: object) -> str:
        x = super().validate(x)
        if x and runtime.python_for_sync(self.username, x) is None:
            raise ValueError(
                f"synced environment {x!r} is not built for user {self.username!r}; "
                "graticule.Cluster(sync=True) builds it first"
            )
        return x


def python_for(username: str, options: dict) -> str:
    """The interpreter of the cluster's environment: synced, named, or the platform's."""
    key = options.get(SYNC_OPTION)
    if key:
        return runtime.python_for_sync(username, key) or sys.executable
    return runtime.python_for_environment(options.get("environment"))


def worker_config(spec: GatewaySpec, profile: str) -> dict[str, Any]:
    """ClusterConfig overrides for a profile: cores -> threads, memory -> memory limit."""
    size = spec.profiles[profile]
    return {
        "worker_cores": size.cpu,
        "worker_threads": size.cpu,
        "worker_memory": size.memory,
    }


def cluster_options(platform: dict | GatewaySpec) -> Callable[[User], Options]:
    """`c.Backend.cluster_options`: a function of the requesting user."""
    spec = platform if isinstance(platform, GatewaySpec) else GatewaySpec.from_json(platform)
    max_workers = spec.dask.max_workers

    def for_user(user: User) -> Options:
        grants = spec.grants_of(user.name)
        if not grants or not grants.profiles:
            # Nothing to offer; admission refuses the request with the reason.
            return Options()
        fields = [
            Granted(
                "profile",
                grants.profiles,
                user.name,
                default=grants.default_profile,
                label="Hardware profile",
            )
        ]
        if grants.environments:
            fields.append(Granted("environment", grants.environments, user.name, label="Environment"))
        fields.append(WorkerCount("workers", default=0, min=0, max=max_workers, label="Workers at start"))
        fields.append(SyncEnvironment(user.name))  # graticule.Cluster(sync=True)
        return Options(*fields, handler=lambda options: worker_config(spec, options["profile"]))

    return for_user
