"""A spot interruption notice retires the worker that gets it (deploy/gateway/spot_notice.py).

Real Dask here: a scheduler and two workers in this process; one worker runs the preload
as a spot machine does (`--preload` of the file its boot wrote) against the simulator's
IMDS stand-in on loopback (GRATICULE_IMDS_URL). The notice comes: that worker retires,
the keys it held (scattered data, which nothing could recompute, and computed results)
are on the other worker, and no result was computed twice. The same on the simulated
cloud, with the gateway replacing the worker: tests/test_aws_spot_e2e.py. And the AWS
gateway hands the preload to the workers of spot profiles only (as a file of the cluster's
secret: EC2's user data limit has no room for it).
"""

from __future__ import annotations

import asyncio
import operator
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dask_gateway_server.backends.base import ClusterConfig
from distributed import Client, Scheduler, Worker, wait
from distributed.core import Status

from deploy.cloud.deadman import with_deadman
from deploy.gateway import spot_notice
from deploy.gateway.aws import SPOT_NOTICE_FILE
from deploy.runtime import env
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.simulator.imds import InstanceMetadata, MetadataServer, fallback_credentials
from tests.support.vm_gateway import aws_backend, user_with

SOURCE = Path(spot_notice.__file__).read_text()


@pytest.fixture
def imds(monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    metadata = InstanceMetadata({"instance-id": "i-0spot"}, b"", {}, None, fallback_credentials)
    server = MetadataServer(listener, metadata).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    monkeypatch.setenv(env.IMDS_URL, url)
    try:
        yield url, metadata
    finally:
        server.stop()


def test_no_notice_until_ec2_gives_one_then_its_action_and_time(imds):
    url, metadata = imds
    watcher = spot_notice.NoticeWatcher(url)
    assert watcher.notice() is None  # 404: no notice
    metadata.interrupt("terminate", datetime(2026, 12, 4, 21, 30, tzinfo=UTC))
    assert watcher.notice() == {"action": "terminate", "time": "2026-12-04T21:30:00Z"}


def test_an_unreachable_metadata_service_is_no_notice():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert spot_notice.NoticeWatcher(f"http://127.0.0.1:{port}").notice() is None


def test_a_noticed_worker_retires_and_its_data_moves_without_recomputation(imds, tmp_path):
    _, metadata = imds
    preload = tmp_path / Path(SPOT_NOTICE_FILE).name  # as the machine's boot writes it
    preload.write_text(SOURCE)
    asyncio.run(asyncio.wait_for(_retire_scenario(metadata, str(preload)), timeout=120))


async def _retire_scenario(metadata: InstanceMetadata, preload: str) -> None:
    async with Scheduler(host="127.0.0.1", port=0, dashboard_address=":0") as scheduler, \
            Worker(scheduler.address, host="127.0.0.1", nthreads=1, preload=[preload]) as spot, \
            Worker(scheduler.address, host="127.0.0.1", nthreads=1) as other, \
            Client(scheduler.address, asynchronous=True) as client:
        pieces = await client.scatter([bytes([i]) * 1000 for i in range(8)], workers=[spot.address])
        products = client.map(operator.mul, range(8), [3] * 8, workers=[spot.address])
        await wait(products)
        keys = [f.key for f in pieces + products]
        assert set((await client.who_has(pieces + products)).values()) == {(spot.address,)}

        metadata.interrupt("terminate", datetime.now(UTC) + timedelta(minutes=2))
        while spot.status != Status.closed:  # the watcher asks every 5 s, then retires the worker
            await asyncio.sleep(0.2)

        assert list(scheduler.workers) == [other.address]
        holders = await client.who_has(pieces + products)
        assert {key: tuple(found) for key, found in holders.items()} == {key: (other.address,) for key in keys}
        assert await client.gather(pieces) == [bytes([i]) * 1000 for i in range(8)]
        assert await client.gather(products) == [i * 3 for i in range(8)]
        # each product computed once: moved, not lost and recomputed
        computed = [key for key, start, finish, *_ in scheduler.story(*[f.key for f in products])
                    if start == "processing" and finish == "memory"]
        assert sorted(computed) == sorted(f.key for f in products)


# --- the gateway gives the watcher to spot workers only ------------------------------------

EC2_USER_DATA_LIMIT = 16 * 1024  # bytes, before base64


def test_spot_workers_watch_for_the_notice_and_their_user_data_fits_ec2s_limit(
        tmp_path, monkeypatch, aws, platform_text):
    backend, _ = aws_backend(tmp_path, monkeypatch, aws, platform_text)
    user = user_with(backend, "large")

    async def check() -> None:  # dask-gateway's records need a running loop
        for profile, spot in (("small", False), ("large", True)):
            assert backend.worker_template(profile).get("spot", False) is spot
            cluster = backend.db.create_cluster(user, {"profile": profile}, ClusterConfig().to_dict())
            command = backend.worker_machine_command(cluster)
            assert (command[-2:] == ["--preload", SPOT_NOTICE_FILE]) is spot
            # the watcher comes with the cluster's secret (written at boot), not in user data
            files = backend._secret_values(cluster)["files"]
            assert (files.get(SPOT_NOTICE_FILE) == SOURCE) is spot
            environment = backend.get_worker_env(cluster)
            spec = backend._machine_spec(cluster, "worker", f"{cluster.name[:16]}-w", command, environment)
            whole = with_deadman(spec.user_data, spec.deadman)
            assert len(whole.encode()) < EC2_USER_DATA_LIMIT, len(whole.encode())

    try:
        asyncio.run(check())
    finally:
        backend.budgets.close()
