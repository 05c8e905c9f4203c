"""Two publishers of one environment key at once (two gateway builds of the same synced set,
or a build and an apply): both succeed, and the bucket holds the set once. Keys are content
hashes, so whatever one publisher finds already there is what it would have put.

Real parts: `publish_environment` and the stores' adapters through google-cloud-storage
against gcp-storage-emulator, and boto3 against a moto server. The emulator checks no IAM:
on GCP it runs behind tests/support/gcp/storage_creator.py, which answers as Cloud Storage
answers the hub's account (objectCreator under environments/: it may create objects, not
replace them), in either order of its two checks (412 precondition, 403 permission). The
publishers meet after listing what is there, so each then puts every file and every file is
put twice, in whatever interleaving the threads take.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from google.api_core.exceptions import Forbidden

from deploy.vm.gcp_stores import GcsObjects
from deploy.vm.publish import publish_environment
from deploy.vm.stores import ObjectStore, S3Objects
from deploy.vm.wheelhouse import Wheelhouse
from tests.support.gcp.storage import running_gcs
from tests.support.gcp.storage_creator import CreateOnly
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)

BUCKET = "oceanlab-artifacts"
KEY = "a" * 64
WHEELS = ("alpha-1.0-py3-none-any.whl", "beta-2.0-py3-none-any.whl", "gamma-3.0-py3-none-any.whl")


def _wheelhouse(tmp_path: Path) -> Wheelhouse:
    directory = tmp_path / "wheels"
    directory.mkdir()
    for number, name in enumerate(WHEELS):
        (directory / name).write_bytes(bytes([number]) * 4096)
    (directory / "requirements.txt").write_text("".join(f"{name.split('-')[0]}\n" for name in WHEELS))
    (directory / "index.json").write_text(json.dumps({"files": list(WHEELS)}))
    return Wheelhouse(KEY, directory)


def _expected(wheels: Wheelhouse) -> dict[str, bytes]:
    return {f"environments/{KEY}/{name}": (wheels.directory / name).read_bytes()
            for name in [*WHEELS, "requirements.txt", "index.json"]}


class _Meeting:
    """A publisher's store, whose listing waits for the other publisher's: both have then
    seen the same missing files, and both upload all of them."""

    def __init__(self, store: ObjectStore, barrier: threading.Barrier) -> None:
        self.store, self.barrier = store, barrier

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def keys(self, prefix: str) -> list[str]:
        found = self.store.keys(prefix)
        self.barrier.wait()
        return found


def _publish_twice_at_once(store, wheels: Wheelhouse) -> list[int]:
    """Each publisher with a client of its own, as two processes are."""
    barrier = threading.Barrier(2, timeout=120)
    with ThreadPoolExecutor(max_workers=2) as pool:
        running = [pool.submit(publish_environment, _Meeting(store(), barrier), KEY, wheels) for _ in range(2)]
        return [future.result() for future in running]


@pytest.mark.parametrize("precondition_first", [True, False], ids=["412-first", "403-first"])
def test_two_publishes_of_one_key_at_once_both_succeed_on_cloud_storage(tmp_path, precondition_first):
    wheels = _wheelhouse(tmp_path)
    with running_gcs(create_only=CreateOnly(("environments/",), precondition_first)) as gcs:
        gcs.client().create_bucket(BUCKET)
        assert _publish_twice_at_once(lambda: GcsObjects(BUCKET, client=gcs.client()), wheels) == [3, 3]
        stored = {blob.name: blob.download_as_bytes() for blob in gcs.client().list_blobs(BUCKET)}
        assert stored == _expected(wheels)
        # The gate is Cloud Storage's for the hub: replacing an object there is refused.
        with pytest.raises(Forbidden):
            gcs.client().bucket(BUCKET).blob(f"environments/{KEY}/index.json").upload_from_string(b"{}")


def test_two_publishes_of_one_key_at_once_both_succeed_on_s3(tmp_path, moto_server):  # noqa: F811
    moto_server.reset()
    wheels = _wheelhouse(tmp_path)
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": moto_server.region})
    assert _publish_twice_at_once(lambda: S3Objects(moto_server.client("s3"), BUCKET), wheels) == [3, 3]
    listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    stored = {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}
    assert stored == _expected(wheels)
