"""The gateway side of environments: the `sync_environment` cluster option and the Python
that runs a cluster's scheduler and workers."""

from __future__ import annotations

import sys

from dask_gateway_server.options import String

from deploy.environments import runtime

SYNC_OPTION = "sync_environment"


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
