"""`platform apply` publishing locked environments' wheels for the launched machines
(deploy.vm.environment_wheels, deploy.vm.publish.publish_environment): the lock entry's
hashed x86_64 lines fetched with pip (hashes required) from an offline wheel source
(GRATICULE_WHEELHOUSE_FIND_LINKS), cached by key, uploaded to a real moto S3 bucket under
`environments/<key>/` only when absent, and the {environment: key} index the gateway reads.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata

from deploy.environments.lock import Entry
from deploy.vm import environment_wheels, publish
from deploy.vm.stores import S3Objects
from graticule.wheels import repack
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)

BUCKET = "oceanlab-artifacts-123456789012"


def _entry(source, python: str = "3.11") -> Entry:
    wheel = repack(metadata.distribution("six"), source)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    line = f"six=={metadata.version('six')} --hash=sha256:{digest}"
    return Entry(python=python, spec_hash="sha256:x", packages=(f"six=={metadata.version('six')}",),
                 machines={"x86_64": (line,)})


def test_locked_environments_are_published_once_with_their_index(tmp_path, monkeypatch, moto_server):  # noqa: F811
    moto_server.reset()
    source = tmp_path / "source"
    source.mkdir()
    monkeypatch.setenv("GRATICULE_WHEELHOUSE_FIND_LINKS", str(source))
    entries = {"tiny": _entry(source), "newer": _entry(source, python="3.13")}
    assert environment_wheels.machine_key(entries["tiny"]) == entries["tiny"].build_key  # on this x86_64 host
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": moto_server.region})
    said: list[str] = []

    def upload(key, wheels):
        return publish.publish_environment(S3Objects(s3, BUCKET), key, wheels)

    keys = environment_wheels.publish_all(entries, tmp_path / "cache", upload, said.append)
    key = entries["tiny"].build_key
    assert keys == {"tiny": key}  # 3.13 is not the machines' Python: left out, and said so
    assert any("newer: not installable" in line for line in said)
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    wheel = f"six-{metadata.version('six')}-py2.py3-none-any.whl"
    assert listed == [f"environments/{key}/{name}" for name in ("index.json", "requirements.txt", wheel)]
    index = json.loads(s3.get_object(Bucket=BUCKET, Key=f"environments/{key}/index.json")["Body"].read())
    assert index == {"files": [wheel]}

    said.clear()
    assert environment_wheels.publish_all(entries, tmp_path / "cache", upload, said.append) == keys
    assert not any("uploaded" in line for line in said)  # present: nothing uploaded again
    assert json.loads(environment_wheels.index_file(keys)) == {"tiny": key}
