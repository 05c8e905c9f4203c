"""`workers/<profile>.json`: what the gateway backend needs to start a worker of a profile.

local: a process size (cores, threads, memory limit); aws: the profile's launch template
(name, and the Terraform output that holds its id once applied); gcp: its instance
template. Template names come from `modules.naming`, which the cloud stacks use too.
"""

from __future__ import annotations

import json

from modules import naming
from render.cost import profile_price, region_of
from render.schema import Platform


def render_workers(platform: Platform, target: str | None = None) -> dict[str, bytes]:
    target = target or platform.target
    return {f"workers/{name}.json": _json(worker_template(platform, target, name)) for name in platform.profiles}


def _json(document: dict) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def worker_template(platform: Platform, target: str, name: str) -> dict:
    profile = platform.profiles[name]
    template: dict = {
        "profile": name,
        "target": target,
        "cores": profile.cpu,
        "memory_limit_bytes": profile.memory,
        "gpu": profile.gpu.model_dump() if profile.gpu else None,
        "price_per_hour_usd": profile_price(platform, target, name).price_per_hour_usd,
    }
    if target == "local":
        # One worker process per profile-sized slot: all cores as threads, memory capped.
        template["threads"] = profile.cpu
    elif target == "aws":
        template.update(
            region=region_of(platform, target),
            instance_type=profile.instance.aws,
            spot=profile.spot,
            launch_template_name=naming.worker_template_name(platform.name, name),
            launch_template_id_output=naming.launch_template_id_output(name),
        )
    elif target == "gcp":
        template.update(
            project=platform.cloud.gcp.project if platform.cloud.gcp else None,
            region=region_of(platform, target),
            machine_type=profile.instance.gcp,
            spot=profile.spot,
            instance_template_name=naming.worker_template_name(platform.name, name),
            instance_template_output=naming.instance_template_output(name),
        )
    else:
        raise ValueError(f"unknown target {target!r}")
    return template
