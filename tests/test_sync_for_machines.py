"""Synced environments for aws and gcp machines: the gateway chooses the wheels offline from
what the platform has (the laptop's, the hub's wheelhouse on disk, the locked environments'
caches in the artifacts bucket), installs them on the hub the machines' way, and publishes
them to `environments/<key>/` of the bucket, where the cluster's machines find them.

Real parts: moto's S3 and gcp-storage-emulator's Cloud Storage (boto3 and
google-cloud-storage through deploy.vm.stores: each bucket test runs on both), uv creating
and installing the environments, the AWS and GCP gateway backends with their rendered
workers and gateway configuration. The wheels are tiny
ones written here (a package, its metadata and RECORD), so every source and every
deviation (a version the platform lacks, a package nobody has, a dependency to add, a
dependency nobody has) is under the test's control.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import json
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from deploy.environments import uv
from deploy.environments.syncbuild import SyncBuildError
from deploy.vm.gcp_stores import GcsObjects
from deploy.vm.publish import publish_environment
from deploy.vm.stores import ObjectStore, S3Objects, StoreError
from deploy.vm.synced_for_machines import Sources, build_for_machines, machine_key
from deploy.vm.wheel_pool import SelectionError, WheelPool, select
from deploy.vm.wheelhouse import Wheelhouse
from tests.support.gcp.storage import running_gcs
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.test_gateway_aws_machines import BUCKET, _aws_backend, _user_with

KEY = "0123456789abcdef0123456789abcdef"  # the SDK's key of the laptop's capture
GCS_BUCKET = "oceanlab-artifacts-oceanlab-prod"  # naming.gcp_artifacts_bucket of the example


def tiny_wheel(out: Path, name: str, version: str, requires: tuple[str, ...] = (),
               tag: str = "py3-none-any", body: str = "", python: str = ">=3.8") -> Path:
    """An installable wheel of module `name` (its METADATA requiring `requires` and `python`)."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n{body}\n",
        f"{dist_info}/METADATA": "".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                                          f"Requires-Python: {python}\n",
                                          *(f"Requires-Dist: {r}\n" for r in requires)]),
        f"{dist_info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n",
    }
    rows = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        rows.append((path, f"sha256={digest}", str(len(text.encode()))))
    rows.append((f"{dist_info}/RECORD", "", ""))
    record = io.StringIO()
    csv.writer(record, lineterminator="\n").writerows(rows)
    files[f"{dist_info}/RECORD"] = record.getvalue()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{module}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def _house(directory: Path, *wheels: Path) -> Path:
    """A hub wheelhouse on disk: its wheels and index.json (as the hub's boot leaves it)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.json").write_text(json.dumps({"files": sorted(w.name for w in wheels)}))
    return directory


def _import(python: Path, code: str) -> str:
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


# -- choosing the wheels ----------------------------------------------------------------------


def test_pins_are_kept_relaxed_or_left_out_and_the_set_is_closed_over_dependencies(tmp_path):
    wheels = tmp_path / "w"
    pool = WheelPool()
    for wheel in (tiny_wheel(wheels, "alpha", "1.0", ("beta>=2",)), tiny_wheel(wheels, "alpha", "1.1"),
                  tiny_wheel(wheels, "beta", "2.5"), tiny_wheel(wheels, "gamma", "3.0", ("nowhere",)),
                  tiny_wheel(wheels, "delta", "1.0", ("beta<2",)),
                  tiny_wheel(wheels, "macos", "1.0", tag="cp311-cp311-macosx_11_0_arm64"),
                  tiny_wheel(wheels, "py312", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
                  tiny_wheel(wheels, "native", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64"),
                  tiny_wheel(wheels, "onwin", "1.0", ('pywin32; sys_platform == "win32"',)),
                  tiny_wheel(wheels, "newpy", "1.0", python=">=3.11.5")):
        pool.add(wheel.name, "hub wheelhouse", path=wheel)
    assert "macos" not in pool.by_name and "py312" not in pool.by_name  # not for the machines
    wanted = ["alpha==1.0", "gamma==3.0", "delta==1.0", "native==0.9", "absent==1.0", "onwin==1.0", "newpy==1.0"]
    chosen = select(pool, wanted, [], critical=set())
    assert {name: str(c.version) for name, c in chosen.chosen.items()} == {
        "alpha": "1.0", "beta": "2.5", "native": "1.0", "onwin": "1.0"}
    assert chosen.notes == [
        "native==0.9 -> 1.0", "absent==1.0 left out (not in the platform's wheels)",
        "beta 2.5 added (needed by alpha)",
        "gamma 3.0 left out: it needs nowhere, which the gateway does not have",
        "delta 1.0 left out: it needs beta<2, which the gateway does not have",
        "newpy 1.0 left out: it does not run on Python 3.11.2"]  # the machines' Debian 12
    # a dependency that cannot stay takes what needs it along (and is not added back)
    onchain = tiny_wheel(wheels, "onchain", "1.0", ("gamma",))
    pool.add(onchain.name, "hub wheelhouse", path=onchain)
    chain = select(pool, ["onchain==1.0"], [], critical=set())
    assert chain.chosen == {} and chain.notes == [
        "gamma 3.0 added (needed by onchain)",
        "gamma 3.0 left out: it needs nowhere, which the gateway does not have",
        "onchain 1.0 left out: it needs gamma, which the gateway does not have"]
    with pytest.raises(SelectionError, match=r"native==0\.9 is not available to the gateway"):
        select(pool, ["native==0.9"], [], critical={"native"})


def test_the_laptops_own_wheel_wins_over_the_platforms(tmp_path):
    pool = WheelPool()
    mine = tiny_wheel(tmp_path / "laptop", "alpha", "1.0", body="WHERE = 'laptop'")
    theirs = tiny_wheel(tmp_path / "hub", "alpha", "1.0")
    local = [pool.add(mine.name, "laptop", path=mine)]
    pool.add(theirs.name, "hub wheelhouse", path=theirs)
    assert select(pool, ["alpha==1.0"], local, set()).chosen["alpha"].path == mine


# -- building and publishing against moto's S3 and the Cloud Storage emulator --------------------


@pytest.fixture
def s3_bucket(aws) -> S3Objects:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": aws.region})
    return S3Objects(s3, BUCKET)


@pytest.fixture
def gcs_bucket() -> Iterator[GcsObjects]:
    with running_gcs() as gcs:
        client = gcs.client()
        client.create_bucket(GCS_BUCKET)
        yield GcsObjects(GCS_BUCKET, client=client)


@pytest.fixture(params=["s3", "gcs"])
def bucket(request) -> ObjectStore:
    """The artifacts bucket through the ObjectStore seam, on each cloud."""
    return request.getfixturevalue(f"{request.param}_bucket")


def _locked_cache_in_bucket(bucket: ObjectStore, wheel: Path, key: str = "lockedkey") -> None:
    bucket.put(f"environments/{key}/index.json", json.dumps({"files": [wheel.name]}).encode())
    bucket.put_file(f"environments/{key}/{wheel.name}", wheel)


def test_published_from_the_laptop_wheelhouse_and_bucket_and_installable_as_the_machines_do(tmp_path, bucket):
    # laptop: its own package, needing one from a locked environment's cache in the bucket
    mine = tiny_wheel(tmp_path / "laptop", "syncextra", "0.1", ("fromlock>=1",), body="WHERE = 'my laptop'")
    _locked_cache_in_bucket(bucket, tiny_wheel(tmp_path / "locked", "fromlock", "1.2"))
    house = _house(tmp_path / "wheelhouse" / "abc", tiny_wheel(tmp_path / "wheelhouse" / "abc", "fromhub", "2.0"))
    sources = Sources(bucket, house.parent, {"default": "lockedkey", "gone": "nosuchkey"})
    steps: list[str] = []
    progress = SimpleNamespace(step=steps.append, line=lambda _: None)
    requirements = ["fromhub==2.0", "laptoponly==9.9"]
    report = build_for_machines("alice", KEY, "3.11", requirements, {mine.name: mine.read_bytes()}, ["fromhub"],
                                sources=sources, state=tmp_path / "state", progress=progress)
    assert report["installed"] == {"syncextra": "0.1", "fromlock": "1.2", "fromhub": "2.0"}
    assert report["relaxed"] == ["laptoponly==9.9 left out (not in the platform's wheels)",
                                 "fromlock 1.2 added (needed by syncextra)"]
    assert any("environment gone are not readable" in step for step in steps)

    # the bucket: requirements pinned by version and hash, index.json, the wheels; key = its hash
    key = machine_key("alice", KEY, tmp_path / "state")
    requirements_txt = bucket.get(f"environments/{key}/requirements.txt")
    assert key == hashlib.sha256(requirements_txt).hexdigest()[:24]
    files = json.loads(bucket.get(f"environments/{key}/index.json"))["files"]
    assert sorted(files) == ["fromhub-2.0-py3-none-any.whl", "fromlock-1.2-py3-none-any.whl",
                             "syncextra-0.1-py3-none-any.whl"]
    pinned = requirements_txt.decode().splitlines()
    assert pinned[2] == f"syncextra==0.1 --hash=sha256:{hashlib.sha256(mine.read_bytes()).hexdigest()}"

    # a machine: the bucket's files only, installed the way deploy.cloud.machine_boot does
    machine = tmp_path / "machine"
    machine.mkdir()
    for name in ["requirements.txt", *files]:
        (machine / name).write_bytes(bucket.get(f"environments/{key}/{name}"))
    uv.run("venv", "--quiet", "--python", "3.11", str(tmp_path / "env"))
    python = tmp_path / "env" / "bin" / "python"
    uv.run("pip", "install", "--quiet", "--python", str(python), "--offline", "--no-index", "--find-links",
           str(machine), "--require-hashes", "-r", str(machine / "requirements.txt"))
    assert _import(python, "import syncextra, fromlock, fromhub; print(syncextra.WHERE)") == "my laptop"

    # built once: asked again, the same report and nothing rebuilt or republished
    steps.clear()
    again = build_for_machines("alice", KEY, "3.11", requirements, {mine.name: mine.read_bytes()}, ["fromhub"],
                               sources=sources, state=tmp_path / "state", progress=progress)
    assert again == report and steps == []


def test_a_critical_package_the_platform_lacks_fails_the_sync_and_publishes_nothing(tmp_path, bucket):
    house = _house(tmp_path / "wheelhouse" / "abc", tiny_wheel(tmp_path / "wheelhouse" / "abc", "dask", "1.0"))
    with pytest.raises(SyncBuildError, match=r"dask==2\.0 is not available to the gateway"):
        build_for_machines("alice", KEY, "3.11", ["dask==2.0"], {}, ["dask"],
                           sources=Sources(bucket, house.parent, {}), state=tmp_path / "state")
    with pytest.raises(SyncBuildError, match="cannot be installed on the machines"):
        mac = tiny_wheel(tmp_path / "laptop", "mine", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
        build_for_machines("alice", KEY, "3.11", [], {mac.name: mac.read_bytes()}, [],
                           sources=Sources(bucket, house.parent, {}), state=tmp_path / "state")
    assert bucket.keys("environments/") == []
    assert machine_key("alice", KEY, tmp_path / "state") is None


# -- the gateway backend on aws ----------------------------------------------------------------


def test_the_aws_backend_builds_publishes_and_boots_machines_from_a_synced_environment(
        tmp_path, monkeypatch, aws, s3_bucket, platform_text):
    from dask_gateway_server.backends.base import PublicException
    from dask_gateway_server.models import User

    backend, _ = _aws_backend(tmp_path, monkeypatch, aws, platform_text)
    house = _house(tmp_path / "wheelhouse" / "abc", tiny_wheel(tmp_path / "wheelhouse" / "abc", "fromhub", "2.0"))
    backend.hub_wheelhouses = str(house.parent)
    user = User(_user_with(backend, "small"))
    options = {"profile": "small", "sync_environment": KEY}
    try:
        with pytest.raises(PublicException, match="not published for the machines"):
            asyncio.run(backend.admit_cluster(user, options, None))
        mine = tiny_wheel(tmp_path / "laptop", "syncextra", "0.1")
        report = backend.build_synced(user.name, KEY, "3.11", ["fromhub==2.0"], {mine.name: mine.read_bytes()}, [])
        assert report["installed"] == {"syncextra": "0.1", "fromhub": "2.0"}
        asyncio.run(backend.admit_cluster(user, options, None))  # published: admitted
        key = machine_key(user.name, KEY)
        assert s3_bucket.exists(f"environments/{key}/index.json")
        cluster = SimpleNamespace(options=options, username=user.name, name="c1")
        assert backend.environment_key(cluster) == key
        script = backend.boot_user_data(cluster, ["@python", "-m", "distributed.cli.dask_scheduler"], {})
        assert f"ENVIRONMENT={key}\n" in script and "PLATFORM_SOFTWARE=0" in script
        # another user's cluster naming alice's key finds nothing of hers
        other = SimpleNamespace(options=options, username="someone-else", name="c2")
        assert backend.environment_key(other) is None
    finally:
        backend.budgets.close()


class CreateOnly:
    """The bucket as the gcp hub's account sees it: objects may be created, never replaced
    (roles/storage.objectCreator; replacing needs storage.objects.delete). A stand-in for the
    IAM check, which neither moto nor the Cloud Storage emulator makes."""

    def __init__(self, store: ObjectStore) -> None:
        self.store, self.url, self.written = store, store.url, []

    def get(self, key: str) -> bytes:
        return self.store.get(key)

    def keys(self, prefix: str) -> list[str]:
        return self.store.keys(prefix)

    def exists(self, key: str) -> bool:
        return self.store.exists(key)

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._refuse_replacing(key)
        self.store.put(key, data, content_type)

    def put_file(self, key: str, path: Path) -> None:
        self._refuse_replacing(key)
        self.store.put_file(key, path)

    def _refuse_replacing(self, key: str) -> None:
        if self.store.exists(key):
            raise StoreError(f"writing {key} in {self.url} failed: 403 storage.objects.delete denied")
        self.written.append(key)


def test_an_interrupted_publish_is_completed_without_replacing_what_was_uploaded(tmp_path, bucket):
    house = tmp_path / "set"
    wheels = [tiny_wheel(house, "alpha", "1.0"), tiny_wheel(house, "beta", "2.0")]
    (house / "requirements.txt").write_text("".join(f"{w.name}\n" for w in wheels))
    (house / "index.json").write_text(json.dumps({"files": [w.name for w in wheels]}))
    cache = Wheelhouse("setkey", house)
    # the first attempt stopped (a gateway restart) after one wheel: no index.json, so not published
    bucket.put_file(f"environments/setkey/{wheels[0].name}", wheels[0])
    guarded = CreateOnly(bucket)
    assert publish_environment(guarded, "setkey", cache) == 1
    assert guarded.written == [f"environments/setkey/{wheels[1].name}", "environments/setkey/requirements.txt",
                               "environments/setkey/index.json"]  # the index last: complete from then on
    assert sorted(bucket.keys("environments/setkey/")) == sorted(
        f"environments/setkey/{name}" for name in [w.name for w in wheels] + ["index.json", "requirements.txt"])
    assert publish_environment(guarded, "setkey", cache) == 0 and len(guarded.written) == 3  # published: left alone


# -- the gateway backend on gcp ----------------------------------------------------------------


@pytest.fixture
def gcp_backend(tmp_path, monkeypatch, gcs_bucket):
    """The GCP backend as the hub VM runs it, from the rendered example (target gcp), its
    artifacts bucket in the Cloud Storage emulator. No instance is launched here."""
    from dask_gateway_server.backends.db_base import DataManager

    from deploy.gateway.budgets import GatewayBudgets
    from deploy.gateway.gcp import GCPBackend
    from render.gateway_config import render_gateway
    from render.workers import render_workers
    from tests.test_terraform_gcp import example_platform

    platform = example_platform()
    files = {**render_gateway(platform, "gcp"), **render_workers(platform, "gcp")}
    for path, data in files.items():
        (tmp_path / "build" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "build" / path).write_bytes(data)
    (tmp_path / "build" / "outputs.json").write_text(json.dumps({"artifacts_bucket": GCS_BUCKET,
                                                                  "hub_private_ip": "10.0.0.2"}))
    (tmp_path / "build" / "environments").mkdir(exist_ok=True)
    (tmp_path / "build" / "environments" / "wheels.json").write_text(json.dumps({"default": "key-default"}))
    monkeypatch.setenv("GRATICULE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("GRATICULE_LEDGER_URL", raising=False)
    backend = GCPBackend(platform=json.loads(files["gateway/platform.json"]), state_dir=str(tmp_path / "gateway"),
                         templates_dir=str(tmp_path / "build" / "workers"),
                         api_url="http://10.0.0.2:8000/services/dask-gateway/api")  # never asks a metadata server
    backend.db = DataManager(url="sqlite://")
    backend.budgets = GatewayBudgets.open(backend.spec, backend.state_dir)
    assert backend.artifacts.url == f"gs://{GCS_BUCKET}"  # Terraform's output names the bucket
    backend.artifacts = gcs_bucket  # the same bucket, in the emulator
    try:
        yield backend
    finally:
        backend.budgets.close()


def test_the_gcp_backend_builds_publishes_to_cloud_storage_and_boots_machines_from_a_synced_environment(
        tmp_path, gcp_backend, gcs_bucket):
    from dask_gateway_server.backends.base import PublicException
    from dask_gateway_server.models import User

    backend = gcp_backend
    house = _house(tmp_path / "wheelhouse" / "abc", tiny_wheel(tmp_path / "wheelhouse" / "abc", "fromhub", "2.0"))
    backend.hub_wheelhouses = str(house.parent)
    _locked_cache_in_bucket(gcs_bucket, tiny_wheel(tmp_path / "locked", "fromlock", "1.2"), key="key-default")
    user = User(_user_with(backend, "small"))
    options = {"profile": "small", "sync_environment": KEY}
    with pytest.raises(PublicException, match="not published for the machines"):
        asyncio.run(backend.admit_cluster(user, options, None))
    mine = tiny_wheel(tmp_path / "laptop", "syncextra", "0.1", ("fromlock",))
    report = backend.build_synced(user.name, KEY, "3.11", ["fromhub==2.0"], {mine.name: mine.read_bytes()}, [])
    # the laptop's wheel, the hub's wheelhouse on disk and a locked environment's cache in GCS
    assert report["installed"] == {"syncextra": "0.1", "fromhub": "2.0", "fromlock": "1.2"}
    asyncio.run(backend.admit_cluster(user, options, None))  # published: admitted
    key = machine_key(user.name, KEY)
    files = json.loads(gcs_bucket.get(f"environments/{key}/index.json"))["files"]
    assert sorted(files) == ["fromhub-2.0-py3-none-any.whl", "fromlock-1.2-py3-none-any.whl",
                             "syncextra-0.1-py3-none-any.whl"]
    cluster = SimpleNamespace(options=options, username=user.name, name="c1")
    assert backend.environment_key(cluster) == key
    script = backend.boot_user_data(cluster, ["@python", "-m", "distributed.cli.dask_scheduler"], {})
    # the startup script installs it as a locked one: environments/<key>/ of the artifacts bucket
    assert f"ENVIRONMENT={key}\n" in script and "PLATFORM_SOFTWARE=0" in script
    assert f"BUCKET={GCS_BUCKET}\n" in script and "BROKER=http://10.0.0.2:8000/" in script
    # another user's cluster naming alice's key finds nothing of hers; a locked one is as before
    assert backend.environment_key(SimpleNamespace(options=options, username="someone-else", name="c2")) is None
    locked = SimpleNamespace(options={"profile": "small", "environment": "default"}, username=user.name, name="c3")
    assert backend.environment_key(locked) == "key-default"
