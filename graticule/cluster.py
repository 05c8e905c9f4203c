"""`graticule.Cluster`: a dask-gateway cluster configured from the hub, not by hand."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from typing import TypeVar

from dask_gateway import Gateway, GatewayCluster, JupyterHubAuth
from dask_gateway.client import ClusterStatus, GatewayClusterError

from graticule import settings as settings_
from graticule.errors import translated
from graticule.gateway_wait import DEFAULT_WAIT, GatewayWait
from graticule.progress import BuildLine

# Cluster option names agreed with the gateway (deploy/gateway/options.py).
PROFILE, ENVIRONMENT, SYNC = "profile", "environment", "sync_environment"
T = TypeVar("T")


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
    gateway_wait: seconds to wait, saying so on stderr, while the gateway answers 502/503/504
    to the start or its status polls (it restarts when the platform is re-applied); then
    graticule.GatewayUnavailable.
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
        gateway_wait: float = DEFAULT_WAIT,
        **options,
    ):
        if n_workers is not None and adaptive:
            raise ValueError("give n_workers or adaptive, not both")
        if name is not None and (profile or environment or sync or options):
            raise ValueError("name= reconnects to a running cluster; it takes no other options")
        if sync and environment:
            raise ValueError("sync=True runs this Python environment; drop environment=")
        config = settings_.resolve()
        self._gateway_wait = GatewayWait(config.gateway_url, gateway_wait)
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

                options[SYNC] = prepare(config, progress, gateway_wait=gateway_wait)
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

    async def _start_async(self) -> None:
        """dask-gateway's own start (submit, wait for the scheduler, connect), its requests
        tried again while the gateway restarts (`gateway_wait`)."""
        if self.status in ("closing", "closed"):
            return
        waiting = getattr(self, "_gateway_wait", None) or GatewayWait(self.gateway.address)  # (from_name)
        retried = waiting.call
        if self.status == "created":
            self.status = "starting"
            self.name = await retried(lambda: self.gateway._submit(
                cluster_options=self._cluster_options, **self._cluster_kwargs))
        report = await self._wait_until_running(retried)
        self.scheduler_address = report.scheduler_address
        self.dashboard_link = report.dashboard_link
        self.security = report.security
        await self._init_internals()
        self.status = "running"

    async def _wait_until_running(self, retried: Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]):
        """Gateway._wait_for_start, each status poll tried again while the gateway restarts."""
        while True:
            try:
                report = await retried(lambda: self.gateway._cluster_report(self.name, wait=True))
            except TimeoutError:
                pass  # the long poll ended with nothing new
            else:
                if report.status is ClusterStatus.RUNNING:
                    return report
                if report.status is ClusterStatus.FAILED:
                    raise GatewayClusterError(f"Cluster {self.name!r} failed to start, see logs for more information")
                if report.status is ClusterStatus.STOPPED:
                    raise GatewayClusterError(f"Cluster {self.name!r} is already stopped")
            await asyncio.sleep(0.5)

    def close(self, shutdown: bool | None = None) -> None:
        if not hasattr(getattr(self, "gateway", None), "_loop_runner"):
            return  # closed already (see close_gateway)
        super().close(shutdown=shutdown)  # closes the gateway too
        if self.status == "closed":
            del self.gateway._loop_runner

    def __repr__(self) -> str:
        return f"graticule.Cluster<{self.name}, status={self.status}>"
