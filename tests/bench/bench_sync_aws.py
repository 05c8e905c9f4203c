"""A synced environment for aws and gcp machines: what `Cluster(sync=True)` costs the gateway.

Against a moto server's S3 (aws) and gcp-storage-emulator's Cloud Storage (gcp), the same
rounds on each in one run, with the hub wheelhouse the aws e2e tests boot the hub from (this
machine's installed distributions repacked: tests/support/hub_wheelhouse.py) as the hub's
wheelhouse on disk, a laptop that has the SDK's requirements (their installed versions,
pinned, as the SDK captures them) and one local package sent as a wheel:

- cold: the gateway chooses the wheels offline, installs them on the hub (offline, hashes
  required) and publishes them to `environments/<key>/`;
- same set, another user: chosen and installed again, the bucket's copy reused (not uploaded);
- warm: the same user and key again (the built report is returned);
- baseline, in the same run: the machines' own install of the published set (uv offline,
  hashes required, into a fresh environment), which a cluster's every machine pays anyway.

The two clouds share every step but the store (deploy.vm.stores), so their difference is
the store's: the emulator's and moto's speed, not Google's or Amazon's.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploy.environments import uv
from deploy.vm.gcp_stores import GcsObjects
from deploy.vm.stores import ObjectStore, S3Objects
from deploy.vm.synced_for_machines import Sources, build_for_machines, machine_key
from tests.support.environments import SDK_REQUIREMENTS
from tests.support.gcp.storage import running_gcs
from tests.support.hub_wheelhouse import hub_wheels
from tests.support.moto_server import running_moto
from tests.support.wheelhouse import closure

ROUNDS = 3
BUCKET = "bench-artifacts"
KEY = "f" * 32


def _laptop_pins() -> list[str]:
    """The SDK's requirements and their dependencies, pinned at the installed versions."""
    names = [Requirement(text).name for text in SDK_REQUIREMENTS]
    return sorted(f"{canonicalize_name(name)}=={dist.version}" for name, dist in closure(tuple(names)).items())


def _local_wheel(directory: Path) -> dict[str, bytes]:
    from tests.test_sync_for_machines import tiny_wheel

    wheel = tiny_wheel(directory, "benchlocal", "0.1", body="WHERE = 'laptop'")
    return {wheel.name: wheel.read_bytes()}


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


@contextmanager
def _s3_buckets() -> Iterator[Callable[[], ObjectStore]]:
    with running_moto() as server:
        def fresh() -> ObjectStore:
            server.reset()
            s3 = server.client("s3")
            s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": server.region})
            return S3Objects(s3, BUCKET)

        yield fresh


@contextmanager
def _gcs_buckets() -> Iterator[Callable[[], ObjectStore]]:
    with running_gcs() as gcs:
        def fresh() -> ObjectStore:
            gcs.wipe()
            client = gcs.client()
            client.create_bucket(BUCKET)
            return GcsObjects(BUCKET, client=client)

        yield fresh


CLOUDS = {"aws": _s3_buckets, "gcp": _gcs_buckets}


def _rounds(root: Path, wheelhouses: Path, pins: list[str], local: dict[str, bytes],
            fresh: Callable[[], ObjectStore]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"cold": [], "again": [], "warm": [], "machine": [], "wheels": []}
    for round_ in range(ROUNDS):
        sources = Sources(fresh(), wheelhouses, {})
        state = root / f"state-{round_}"

        def sync(user: str, state=state, sources=sources) -> dict:
            return build_for_machines(user, KEY, "3.11", pins, local, ["dask", "distributed"],
                                      sources=sources, state=state)

        times["cold"].append(_timed(lambda: sync("alice")))
        times["again"].append(_timed(lambda: sync("bob")))
        times["warm"].append(_timed(lambda: sync("alice")))
        key = machine_key("alice", KEY, state)
        published = root / f"published-{round_}"
        published.mkdir()
        for name in sources.store.keys(f"environments/{key}/"):
            (published / name.rsplit("/", 1)[1]).write_bytes(sources.store.get(name))
        env = root / f"machine-{round_}"

        def install(env=env, published=published) -> None:
            uv.run("venv", "--quiet", "--python", "3.11", str(env), env={"UV_NO_CACHE": "1"})
            uv.run("pip", "install", "--quiet", "--python", str(env / "bin" / "python"), "--offline",
                   "--no-index", "--find-links", str(published), "--require-hashes",
                   "-r", str(published / "requirements.txt"), env={"UV_NO_CACHE": "1"})

        times["machine"].append(_timed(install))
        times["wheels"].append(len(list(published.glob("*.whl"))))
    return times


def main() -> None:
    house = hub_wheels()  # built once per set of installed versions (a minute the first time)
    pins = _laptop_pins()
    found: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        root = Path(tmp)
        wheelhouses = root / "wheelhouse"
        (wheelhouses / "bench").mkdir(parents=True)  # as the hub's boot leaves it: the wheels, index.json
        for wheel in house.glob("*.whl"):
            (wheelhouses / "bench" / wheel.name).symlink_to(wheel)
        files = sorted(wheel.name for wheel in house.glob("*.whl"))
        (wheelhouses / "bench" / "index.json").write_text(json.dumps({"files": files}))
        local = _local_wheel(root / "laptop")
        for cloud, buckets in CLOUDS.items():
            (root / cloud).mkdir()
            with buckets() as fresh:
                found[cloud] = _rounds(root / cloud, wheelhouses, pins, local, fresh)
    median = statistics.median
    print(f"laptop: {len(pins)} pinned packages and 1 local wheel; published set: "
          f"{int(found['aws']['wheels'][-1])} wheels (pool: {len(files)} wheels of the hub wheelhouse); "
          f"median of {ROUNDS} rounds per cloud")
    for cloud, times in found.items():
        cold, again, warm, machine = (median(times[k]) for k in ("cold", "again", "warm", "machine"))
        print(f"{cloud} ({'moto S3' if cloud == 'aws' else 'Cloud Storage emulator'}):")
        print(f"  cold sync (choose, install on the hub, publish): {cold:6.2f} s")
        print(f"  same set, another user (bucket copy reused):     {again:6.2f} s")
        print(f"  warm (same user and key):                        {warm * 1000:6.1f} ms")
        print(f"  baseline, one machine's install of the set:      {machine:6.2f} s")
        print(f"  cold sync / machine install: {cold / machine:.2f}x; "
              f"another user / machine install: {again / machine:.2f}x")
    print(f"gcp / aws: cold {median(found['gcp']['cold']) / median(found['aws']['cold']):.2f}x, "
          f"another user {median(found['gcp']['again']) / median(found['aws']['again']):.2f}x")
