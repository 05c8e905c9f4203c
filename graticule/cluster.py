"""`graticule.Cluster`: a dask-gateway cluster configured from the hub, not by hand."""

from __future__ import annotations

import warnings
from collections.abc import Callable

from dask_gateway import Gateway, GatewayCluster, JupyterHubAuth

from graticule import settings as settings_
from graticule.errors import translated
from graticule.progress import BuildLine

# Cluster option names agreed with the gateway (deploy/gateway/options.py).
PROFILE, ENVIRONMENT, SYNC = "profile", "environment", "sync_environment"


def close_gateway(gateway: Gateway) -> None:
    """Close a dask_gateway.Gateway exactly once.

    Its __del__ closes it again and, once the loop is stopped, that raises inside the
    finalizer ("Exception ignored in Gateway.__del__"); without the loop runner it skips."""
    if hasattr(gateway, "_loop_runner"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gateway.close()
        del gateway._loop_runner


class Cluster(GatewayCluster):
    """A Dask cluster on the platform, e.g.
    `with Cluster(profile="large", adaptive=(0, 20)) as cluster: client = cluster.get_client()`.

    profile / environment: names from platform.yaml that your groups grant (None: defaults).
    n_workers or adaptive=(minimum, maximum): initial scaling.
    name: reconnect to an existing cluster of yours instead of starting one.
    sync: run the cluster in a copy of this Python environment (package sync).
    progress: while the gateway builds that copy, show its steps and uv's output on stderr
    (True; rich on a terminal, plain lines otherwise or when CI is set), nothing (False),
    or pass each graticule.progress.BuildLine to this callable.
    """

    def __init__(
        self,
        profile: str | None = None,
        environment: str | None = None,
        n_workers: int | None = None,
        adaptive: tuple[int, int] | bool | None = None,
        name: str | None = None,
        shutdown_on_close: bool = True,
        sync: bool = False,
        progress: bool | Callable[[BuildLine], None] = True,
        **options,
    ):
        if n_workers is not None and adaptive:
            raise ValueError("give n_workers or adaptive, not both")
        if name is not None and (profile or environment or sync or options):
            raise ValueError("name= reconnects to a running cluster; it takes no other options")
        if sync and environment:
            raise ValueError("sync=True runs this Python environment; drop environment=")
        config = settings_.resolve()
        connection = {
            "address": config.gateway_url,
            "proxy_address": config.proxy_address,
            "auth": JupyterHubAuth(api_token=config.token),
        }
        if name is not None:
            self._start(config, lambda: self._init_internal(
                **connection, shutdown_on_close=shutdown_on_close, name=name))
        else:
            if sync:
                from graticule.sync import prepare

                options[SYNC] = prepare(config, progress)
            chosen = {PROFILE: profile, ENVIRONMENT: environment, **options}
            chosen = {key: value for key, value in chosen.items() if value is not None}
            self._start(config, lambda: super(Cluster, self).__init__(
                **connection, shutdown_on_close=shutdown_on_close, **chosen))
        with translated(config.gateway_url):
            if n_workers is not None:
                self.scale(n_workers)
            elif adaptive:
                minimum, maximum = (None, None) if adaptive is True else adaptive
                self.adapt(minimum=minimum, maximum=maximum)

    def _start(self, config: settings_.Settings, start) -> None:
        try:
            with translated(config.gateway_url):
                start()
        except BaseException:
            # dask-gateway already stopped what it started; close its loop and session
            # here so a failure leaks no thread and no "unclosed client session" warning.
            gateway = getattr(self, "gateway", None)
            if gateway is not None:
                self.status = "closed"
                close_gateway(gateway)
            raise

    def close(self, shutdown: bool | None = None) -> None:
        if not hasattr(getattr(self, "gateway", None), "_loop_runner"):
            return  # closed already (see close_gateway)
        super().close(shutdown=shutdown)  # closes the gateway too
        if self.status == "closed":
            del self.gateway._loop_runner

    def __repr__(self) -> str:
        return f"graticule.Cluster<{self.name}, status={self.status}>"
