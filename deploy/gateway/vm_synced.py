"""Synced environments (`Cluster(sync=True)`) on launched machines, for every cloud alike.

The gateway on the hub VM builds the user's environment from the wheels the platform holds
(`deploy.vm.synced_for_machines`), publishes it to `environments/<key>/` of the artifacts
bucket through the cloud's ObjectStore (`deploy.vm.stores`: S3 or Cloud Storage), and the
cluster's machines install it from there at boot like a locked environment. A cloud's
backend gives `artifacts`, its store with the gateway's credentials; everything else is
here, once.
"""

from __future__ import annotations

from pathlib import Path

from dask_gateway_server.backends.base import PublicException
from traitlets import Unicode

from deploy.gateway.options import SYNC_OPTION
from deploy.gateway.vm import VMBackend
from deploy.vm.stores import ObjectStore
from deploy.vm.synced_for_machines import Sources, build_for_machines, machine_key
from modules.hub_boot_script import WHEELHOUSE


class SyncingVMBackend(VMBackend):
    """A VM backend whose machines install their environment from the artifacts bucket,
    a locked one (published by apply) or a synced one (published by this gateway)."""

    hub_wheelhouses = Unicode(WHEELHOUSE, help="Where the hub VM keeps its wheelhouses: wheels for "
                                               "synced environments", config=True)

    @property
    def artifacts(self) -> ObjectStore:
        """The artifacts bucket, with this gateway's credentials."""
        raise NotImplementedError

    async def admit_cluster(self, user, options: dict, config) -> None:
        await super().admit_cluster(user, options, config)
        synced = options.get(SYNC_OPTION)
        if synced and machine_key(user.name, synced) is None:
            # built on the hub only (not by this backend): its machines would have nothing to install
            raise PublicException(f"synced environment {synced!r} was not published for the machines; "
                                  "run graticule.Cluster(sync=True) again")

    def build_synced(self, user: str, key: str, *arguments, progress=None) -> dict:
        """The sync API's builder (in a worker thread): for the machines, published."""
        sources = Sources(self.artifacts, Path(self.hub_wheelhouses), self.environment_wheels())
        return build_for_machines(user, key, *arguments, sources=sources, progress=progress)

    def environment_key(self, cluster) -> str | None:
        """A synced environment's key as this gateway published it for the cluster's user,
        else the locked one's."""
        synced = (cluster.options or {}).get(SYNC_OPTION)
        if synced:
            return machine_key(cluster.username, synced)
        return super().environment_key(cluster)
