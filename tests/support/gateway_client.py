"""A dask_gateway.Gateway client for tests that closes once.

Upstream's __del__ closes the client a second time after `with` has closed it, and
that raises inside the finalizer once the loop runner has stopped ("Exception ignored
in Gateway.__del__"). The SDK avoids it with graticule.cluster.close_gateway.
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
