"""A dask_gateway.Gateway client for tests that closes once.

Upstream's __del__ closes the client a second time after `with` has closed it, and
that raises inside the finalizer once the loop runner has stopped ("Exception ignored
in Gateway.__del__"). The clusters it returns carry a Gateway of their own, which gets
the same treatment. The SDK avoids it with graticule.cluster.close_gateway.
"""

from __future__ import annotations

import dask_gateway


class Gateway(dask_gateway.Gateway):
    _closed = False

    def close(self):
        if self._closed:
            return None
        self._closed = True
        return super().close()

    def new_cluster(self, *args, **kwargs) -> dask_gateway.GatewayCluster:
        return _closing_once(super().new_cluster(*args, **kwargs))

    def connect(self, *args, **kwargs) -> dask_gateway.GatewayCluster:
        return _closing_once(super().connect(*args, **kwargs))


def _closing_once(cluster: dask_gateway.GatewayCluster) -> dask_gateway.GatewayCluster:
    cluster.gateway.__class__ = Gateway  # the cluster's own client: same class, closes once
    return cluster
