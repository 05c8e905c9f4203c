"""A dask_gateway.Gateway client for tests that closes once, and never from a finalizer.

Upstream's __del__ closes the client a second time after `with` has closed it, and
that raises inside the finalizer once the loop runner has stopped ("Exception ignored
in Gateway.__del__"). The clusters it returns carry a Gateway of their own on the same
event loop, which gets the same treatment.

A cluster that fails to start or connect (a refused `connect`, say) is worse: upstream
leaves the half-made GatewayCluster to its __del__, which closes it by running a
coroutine on the shared loop and waiting for it. When the garbage collector happens to
run that finalizer on the loop's own thread, the loop waits for itself and every later
call on this Gateway hangs. Here such a cluster is closed at once, in the calling thread,
as graticule.Cluster does (graticule.cluster.close_gateway).
"""

from __future__ import annotations

from collections.abc import Callable

import dask_gateway

from graticule.cluster import close_gateway


class Gateway(dask_gateway.Gateway):
    _closed = False

    def close(self):
        if self._closed:
            return None
        self._closed = True
        return super().close()

    def new_cluster(self, cluster_options=None, shutdown_on_close=True, **kwargs) -> dask_gateway.GatewayCluster:
        return _made(lambda cluster: dask_gateway.GatewayCluster.__init__(
            cluster, cluster_options=cluster_options, shutdown_on_close=shutdown_on_close,
            **self._connection(), **kwargs))

    def connect(self, cluster_name, shutdown_on_close=False) -> dask_gateway.GatewayCluster:
        return _made(lambda cluster: cluster._init_internal(
            name=cluster_name, shutdown_on_close=shutdown_on_close, **self._connection()))

    def _connection(self) -> dict:
        # What upstream's new_cluster/connect hand their GatewayCluster.
        return {
            "address": self.address,
            "proxy_address": self.proxy_address,
            "public_address": self._public_address,
            "auth": self.auth,
            "asynchronous": self.asynchronous,
            "loop": self.loop,
        }


def _made(initialise: Callable[[dask_gateway.GatewayCluster], None]) -> dask_gateway.GatewayCluster:
    cluster = object.__new__(dask_gateway.GatewayCluster)
    try:
        initialise(cluster)
    except BaseException:
        cluster.status = "closed"  # its __del__ now does nothing
        if hasattr(cluster, "gateway"):
            close_gateway(cluster.gateway)
        raise
    cluster.gateway.__class__ = Gateway  # the cluster's own client: same class, closes once
    return cluster
