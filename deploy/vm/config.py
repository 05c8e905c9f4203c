"""The published configuration (deploy.vm.publish) as the hub VM reads it."""

from __future__ import annotations

import json

from deploy.files import replace_tree_atomic
from deploy.runtime.state import Layout
from deploy.vm.publish import CURRENT, config_version


def current(s3, bucket: str) -> dict[str, str]:
    """{"version", "wheelhouse"} of config/current.json."""
    return json.loads(s3.get_object(Bucket=bucket, Key=CURRENT)["Body"].read())


def fetch(s3, bucket: str, version: str) -> dict[str, bytes]:
    """Every file of `config/<version>/`, checked against the version (its sha256)."""
    prefix = f"config/{version}/"
    files: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            files[item["Key"][len(prefix):]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    if config_version(files) != version:
        raise ValueError(f"configuration {version[:12]} in s3://{bucket} is incomplete or altered")
    return files


def install(layout: Layout, files: dict[str, bytes], version: str) -> None:
    """Swap `<state>/build` for these files in one rename; the version beside them."""
    replace_tree_atomic(layout.build, {**files, "VERSION": (version + "\n").encode()})


def installed_version(layout: Layout) -> str | None:
    try:
        return (layout.build / "VERSION").read_text().strip()
    except OSError:
        return None
