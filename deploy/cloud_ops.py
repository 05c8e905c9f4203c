"""plan / apply / destroy of a platform on aws or gcp: what the CLI commands share.

Render (pure) -> build/ (atomically) -> the stack's working directory under the state
dir -> terraform init with the backend rendered from platform.yaml -> a saved plan ->
apply of exactly that plan -> outputs in build/outputs.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.cloud_stack import CloudStack
from deploy.errors import RuntimeFailure, UserError
from deploy.files import replace_tree_atomic, write_atomic
from deploy.gitops.plan_summary import headline, summarize
from deploy.runtime.state import state_dir_for
from render.schema import Platform

OUTPUTS = "outputs.json"


@dataclass
class Prepared:
    platform: Platform
    build: Path
    state: Path
    stack: CloudStack
    config_path: Path | None = None  # platform.yaml: its environments.lock is beside it


def state_dir_of(platform: Platform, state: str | None) -> Path:
    return state_dir_for(platform.name, state)


def render_build(platform: Platform, out: Path) -> dict[str, bytes]:
    """Render for the platform's target and replace `out` with it (all or nothing)."""
    from deploy.build_dir import is_replaceable
    from render.build import MANIFEST, RenderError, render

    try:
        files = render(platform)
    except RenderError as exc:
        raise RuntimeFailure(f"render failed, nothing written: {exc}") from None
    if not is_replaceable(out):
        raise UserError(f"{out} exists and is not a graticule build (no {MANIFEST}); refusing to replace it")
    replace_tree_atomic(out, files)
    return files


def prepare(
    platform: Platform, out: str, state: str | None, progress: Callable[[str], None] = lambda _: None,
    config_path: Path | None = None,
) -> Prepared:
    """Render, write build/, set up the stack's working directory and `terraform init`."""
    build = Path(out).absolute()
    files = render_build(platform, build)
    prefix = f"terraform/{platform.target}/"
    stack_files = {path[len(prefix):]: data for path, data in files.items() if path.startswith(prefix)}
    if not stack_files:
        raise RuntimeFailure(f"render produced no {prefix} files: nothing for Terraform to do")
    directory = state_dir_of(platform, state)
    stack = CloudStack(directory / "terraform" / platform.target, platform.target, stack_files)
    progress(f"terraform init ({platform.target}, state bucket {state_bucket(platform)})")
    stack.init()
    return Prepared(platform, build, directory, stack, config_path)


def state_bucket(platform: Platform) -> str:
    cloud = getattr(platform.cloud, platform.target, None)
    return cloud.state_bucket if cloud else "?"


def plan(prepared: Prepared, *, destroy: bool = False, progress: Callable[[str], None] = lambda _: None):
    progress("terraform plan" + (" -destroy" if destroy else ""))
    result, document = prepared.stack.plan(destroy=destroy)
    return result, summarize(document, prepared.platform.target)


def write_outputs(prepared: Prepared) -> dict[str, Any]:
    outputs = prepared.stack.outputs()
    write_atomic(prepared.build / OUTPUTS, json.dumps(outputs, indent=2, sort_keys=True) + "\n")
    return outputs


def publish_hub(prepared: Prepared, outputs: dict[str, Any], progress: Callable[[str], None] = lambda _: None):
    """aws and gcp: the hub VM's wheelhouse and this build's configuration to the artifacts
    bucket (deploy.vm.publish); the running hub picks the new version up (deploy.vm.config_sync)."""
    bucket = outputs.get("artifacts_bucket")
    target = prepared.platform.target
    if target not in ("aws", "gcp") or not bucket:
        return None
    from deploy.vm import environment_wheels, publish, wheelhouse
    from deploy.vm.stores import operator_store

    house = wheelhouse.ensure_wheelhouse(prepared.state / "wheelhouse", progress, cloud=target)
    build = {
        path.relative_to(prepared.build).as_posix(): path.read_bytes()
        for path in sorted(prepared.build.rglob("*")) if path.is_file()
    }
    cloud = getattr(prepared.platform.cloud, target)
    store = operator_store(target, bucket, region=outputs.get("region") or cloud.region,
                           project=outputs.get("project") or getattr(cloud, "project", ""))
    files = publish.config_files(build, outputs)
    # the gateway's machines install them (deploy.gateway.aws, deploy.gateway.gcp)
    files[environment_wheels.INDEX_FILE] = environment_wheels.index_file(
            _publish_environments(prepared, store, progress))
    return publish.publish(store, house, files, progress)


def _publish_environments(prepared: Prepared, store, progress: Callable[[str], None]) -> dict[str, str]:
    """Every locked environment's wheels, for the machines the gateway launches; {name: key}."""
    from deploy.environments import lock
    from deploy.vm import environment_wheels, publish
    from deploy.vm.stores import StoreError

    entries = lock.read(lock.lock_path(prepared.config_path)) if prepared.config_path else None
    if not entries:
        return {}
    try:
        return environment_wheels.publish_all(
            entries, prepared.state / "environment-wheels",
            lambda key, wheels: publish.publish_environment(store, key, wheels), progress)
    except StoreError as exc:
        raise RuntimeFailure(f"publishing the environments' wheels failed: {exc}") from None


def describe_plan(summary: dict[str, Any]) -> str:
    lines = [headline(summary)]
    for change in summary["changes"]:
        lines.append(f"  {_symbol(change['actions'])} {change['address']}")
    return "\n".join(lines)


def _symbol(actions: list[str]) -> str:
    if {"create", "delete"} <= set(actions):
        return "-/+"
    return {"create": "+", "update": "~", "delete": "-"}.get(actions[0], "?")
