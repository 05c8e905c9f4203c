"""`platform apply`'s last step on aws and gcp: publish what the hub VM runs to its artifacts bucket.

Layout (the VM's user data and deploy.vm.boot read it):

    wheelhouse/<id>/requirements.txt, index.json, *.whl   <id> = sha256 of requirements.txt
    config/<version>/<path>                               hub/, gateway/, workers/, environments/, jobs/,
    config/<version>/outputs.json                         manifest.json; Terraform's outputs
    config/current.json  {"version", "wheelhouse"}        written last: the switch
    environments/<key>/requirements.txt, index.json, *.whl  each locked environment's wheels for the
                                                      launched machines (deploy.cloud.machine_boot)

A wheelhouse is uploaded only when absent (its index.json is uploaded last, so a present
index means a complete wheelhouse). `<version>` is the sha256 over the config files, so
re-applying an unchanged platform publishes the same version and the hub does nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deploy.errors import RuntimeFailure
from deploy.vm.stores import ObjectStore, StoreError
from deploy.vm.wheelhouse import Wheelhouse
from modules import naming

CONFIG_PREFIXES = ("hub/", "gateway/", "workers/", "environments/", "jobs/")
CONFIG_FILES = ("manifest.json",)
OUTPUTS = "outputs.json"
CURRENT = "config/current.json"


@dataclass(frozen=True)
class Published:
    version: str
    wheelhouse: str
    uploaded_wheels: int  # 0 when the bucket had the wheelhouse already


def config_files(build: Mapping[str, bytes], outputs: Mapping[str, Any]) -> dict[str, bytes]:
    """The rendered files the hub VM needs, plus Terraform's outputs."""
    files = {path: data for path, data in build.items() if path.startswith(CONFIG_PREFIXES) or path in CONFIG_FILES}
    files[OUTPUTS] = (json.dumps(dict(outputs), indent=2, sort_keys=True) + "\n").encode()
    return dict(sorted(files.items()))


def config_version(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return digest.hexdigest()


def publish(store: ObjectStore, wheelhouse: Wheelhouse, files: Mapping[str, bytes],
            progress: Callable[[str], None] = lambda _: None) -> Published:
    """Into the artifacts bucket (deploy.vm.stores: S3 on aws, Cloud Storage on gcp)."""
    version = config_version(files)
    try:
        uploaded = _upload_wheelhouse(store, wheelhouse, progress)
        progress(f"publishing configuration {version[:12]} to {store.url}/config/")
        for path, data in files.items():
            store.put(f"config/{version}/{path}", data)
        current = json.dumps({"version": version, "wheelhouse": wheelhouse.id}, sort_keys=True) + "\n"
        store.put(CURRENT, current.encode(), content_type="application/json")
    except StoreError as exc:
        raise RuntimeFailure(f"publishing to the artifacts bucket failed: {exc}") from None
    return Published(version, wheelhouse.id, uploaded)


def _upload_wheelhouse(store: ObjectStore, wheelhouse: Wheelhouse, progress: Callable[[str], None]) -> int:
    prefix = f"wheelhouse/{wheelhouse.id}"
    if store.exists(f"{prefix}/index.json"):
        return 0
    progress(f"uploading the hub wheelhouse {wheelhouse.id[:12]} ({len(wheelhouse.files)} wheels) "
             f"to {store.url}/{prefix}/")
    return upload_wheels(store, prefix, wheelhouse)


def upload_wheels(store: ObjectStore, prefix: str, wheelhouse: Wheelhouse,
                  present: frozenset[str] = frozenset()) -> int:
    """requirements.txt, the wheels and index.json under `prefix/`, the index last: a present
    index means a complete set (machines and later uploads rely on it). Keys in `present`
    are not uploaded again."""
    names = wheelhouse.files
    for name in [*names, "requirements.txt", "index.json"]:
        if f"{prefix}/{name}" not in present:
            store.put_file(f"{prefix}/{name}", wheelhouse.directory / name)
    return len([name for name in names if f"{prefix}/{name}" not in present])


def publish_environment(store: ObjectStore, key: str, wheels: Wheelhouse) -> int:
    """One environment's wheel cache, `environments/<key>/` (key: the lock entry's build key
    or a synced set's hash: the same key, the same files); uploaded only when absent, and
    after an interrupted upload only what is missing: on gcp the hub may create objects
    there but not replace them (modules.gcp.hub_state). Returns the number of wheels uploaded."""
    prefix = naming.environment_prefix(key)
    if store.exists(f"{prefix}/index.json"):
        return 0
    return upload_wheels(store, prefix, wheels, frozenset(store.keys(f"{prefix}/")))
