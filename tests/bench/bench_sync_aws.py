"""A synced environment for aws machines: what `Cluster(sync=True)` costs the gateway.

Against a moto server's S3, with the hub wheelhouse the aws e2e tests boot the hub from (this
machine's installed distributions repacked: tests/support/hub_wheelhouse.py) as the hub's
wheelhouse on disk, a laptop that has the SDK's requirements (their installed versions,
pinned, as the SDK captures them) and one local package sent as a wheel:

- cold: the gateway chooses the wheels offline, installs them on the hub (offline, hashes
  required) and publishes them to `environments/<key>/`;
- same set, another user: chosen and installed again, the bucket's copy reused (not uploaded);
- warm: the same user and key again (the built report is returned);
- baseline, in the same run: the machines' own install of the published set (uv offline,
  hashes required, into a fresh environment), which a cluster's every machine pays anyway.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploy.environments import uv
from deploy.vm.stores import S3Objects
from deploy.vm.synced_for_machines import Sources, build_for_machines, machine_key
from tests.support.environments import SDK_REQUIREMENTS
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
    from tests.support.wheelhouse import tiny_wheel

    wheel = tiny_wheel(directory, "benchlocal", "0.1", body="WHERE = 'laptop'")
    return {wheel.name: wheel.read_bytes()}


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    house = hub_wheels()  # built once per set of installed versions (a minute the first time)
    pins = _laptop_pins()
    cold, again, warm, machine = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-sync-aws-") as tmp, running_moto() as server:
        root = Path(tmp)
        wheelhouses = root / "wheelhouse"
        (wheelhouses / "bench").mkdir(parents=True)  # as the hub's boot leaves it: the wheels, index.json
        for wheel in house.glob("*.whl"):
            (wheelhouses / "bench" / wheel.name).symlink_to(wheel)
        files = sorted(wheel.name for wheel in house.glob("*.whl"))
        (wheelhouses / "bench" / "index.json").write_text(json.dumps({"files": files}))
        local = _local_wheel(root / "laptop")
        for round_ in range(ROUNDS):
            server.reset()
            s3 = server.client("s3")
            s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": server.region})
            sources = Sources(S3Objects(s3, BUCKET), wheelhouses, {})
            state = root / f"state-{round_}"

            def sync(user: str, state=state, sources=sources) -> dict:
                return build_for_machines(user, KEY, "3.11", pins, local, ["dask", "distributed"],
                                          sources=sources, state=state)

            cold.append(_timed(lambda: sync("alice")))
            again.append(_timed(lambda: sync("bob")))
            warm.append(_timed(lambda: sync("alice")))
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

            machine.append(_timed(install))
        wheels = len(list(published.glob("*.whl")))
    median = statistics.median
    print(f"laptop: {len(pins)} pinned packages and 1 local wheel; published set: {wheels} wheels "
          f"(pool: {len(list(house.glob('*.whl')))} wheels of the hub wheelhouse); median of {ROUNDS} rounds")
    print(f"  cold sync (choose, install on the hub, publish): {median(cold):6.2f} s")
    print(f"  same set, another user (bucket copy reused):     {median(again):6.2f} s")
    print(f"  warm (same user and key):                        {median(warm) * 1000:6.1f} ms")
    print(f"  baseline, one machine's install of the set:      {median(machine):6.2f} s")
    print(f"  cold sync / machine install: {median(cold) / median(machine):.2f}x; "
          f"another user / machine install: {median(again) / median(machine):.2f}x")
