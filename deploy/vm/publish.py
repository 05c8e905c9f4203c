"""`platform apply`'s last step on aws: publish what the hub VM runs to its artifacts bucket.

Layout (the VM's user data and deploy.vm.boot read it):

    wheelhouse/<id>/requirements.txt, index.json, *.whl   <id> = sha256 of requirements.txt
    config/<version>/<path>                               hub/, gateway/, workers/, environments/, jobs/,
    config/<version>/outputs.json                         manifest.json; Terraform's outputs
    config/current.json  {"version", "wheelhouse"}        written last: the switch
    environments/<key>/requirements.txt, index.json, *.whl  each locked or synced environment's wheels
                                                      for the launched machines (deploy.vm.machine_boot)

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


def s3_client(region: str):
    """boto3's S3 client; AWS_ENDPOINT_URL and the usual credential chain apply."""
    import boto3

    return boto3.client("s3", region_name=region)


def _exists(s3, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def publish(bucket: str, region: str, wheelhouse: Wheelhouse, files: Mapping[str, bytes],
            progress: Callable[[str], None] = lambda _: None, s3=None) -> Published:
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = s3 or s3_client(region)
    version = config_version(files)
    try:
        uploaded = _upload_wheelhouse(s3, bucket, wheelhouse, progress)
        progress(f"publishing configuration {version[:12]} to s3://{bucket}/config/")
        for path, data in files.items():
            s3.put_object(Bucket=bucket, Key=f"config/{version}/{path}", Body=data)
        current = json.dumps({"version": version, "wheelhouse": wheelhouse.id}, sort_keys=True) + "\n"
        s3.put_object(Bucket=bucket, Key=CURRENT, Body=current.encode(), ContentType="application/json")
    except (BotoCoreError, ClientError) as exc:
        raise RuntimeFailure(f"publishing to the artifacts bucket {bucket} failed: {exc}") from None
    return Published(version, wheelhouse.id, uploaded)


def _upload_wheelhouse(s3, bucket: str, wheelhouse: Wheelhouse, progress: Callable[[str], None]) -> int:
    prefix = f"wheelhouse/{wheelhouse.id}"
    if _exists(s3, bucket, f"{prefix}/index.json"):
        return 0
    progress(f"uploading the hub wheelhouse {wheelhouse.id[:12]} ({len(wheelhouse.files)} wheels) "
             f"to s3://{bucket}/{prefix}/")
    return upload_wheels(s3, bucket, prefix, wheelhouse)


def upload_wheels(s3, bucket: str, prefix: str, wheelhouse: Wheelhouse) -> int:
    """requirements.txt, the wheels and index.json under `prefix/`, the index last: a present
    index means a complete set (machines and later uploads rely on it)."""
    names = wheelhouse.files
    for name in [*names, "requirements.txt", "index.json"]:
        s3.upload_file(str(wheelhouse.directory / name), bucket, f"{prefix}/{name}")
    return len(names)


def publish_environment(s3, bucket: str, key: str, wheels: Wheelhouse) -> int:
    """One environment's wheel cache, `environments/<key>/` (key: the lock entry's build_key,
    or a synced environment's key); uploaded only when absent. Returns the wheels uploaded."""
    prefix = naming.environment_prefix(key)
    if _exists(s3, bucket, f"{prefix}/index.json"):
        return 0
    return upload_wheels(s3, bucket, prefix, wheels)
