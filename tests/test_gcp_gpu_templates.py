"""On GCP a GPU profile's instance template carries what the machine type needs: an
attached accelerator (N1 + T4, under its API name) declared as `guest_accelerator`, or
none for a type that brings its own GPUs (g2, a2, ...); either way the VM terminates on
host maintenance (GPU VMs cannot live-migrate). Rendered for real through cdktf."""

from __future__ import annotations

import json

import pytest

from render.terraform_gcp import synthesize_gcp
from tests.support.gcp_render import example_platform


def _gpu_template(instance: str, gpu: dict, memory: str = "30GiB", spot: bool = False) -> dict:
    def edit(data: dict) -> None:
        profile = data["profiles"]["gpu"]
        profile["instance"]["gcp"], profile["gpu"], profile["memory"] = instance, gpu, memory
        profile["spot"] = spot

    rendered = json.loads(synthesize_gcp(example_platform("nat", edit)))
    return rendered["resource"]["google_compute_instance_template"]["gpu"]


@pytest.mark.parametrize(
    ("asked", "api_name"), [("nvidia-t4", "nvidia-tesla-t4"), ("nvidia-v100", "nvidia-tesla-v100")]
)
def test_attached_gpu_is_declared_under_its_api_name(asked: str, api_name: str) -> None:
    template = _gpu_template("n1-standard-8", {"count": 2, "type": asked})
    assert template["guest_accelerator"] == [{"type": api_name, "count": 2}]
    assert template["scheduling"]["on_host_maintenance"] == "TERMINATE"
    assert template["scheduling"]["automatic_restart"] is True


def test_built_in_gpus_are_not_attached_again_but_still_terminate() -> None:
    template = _gpu_template("g2-standard-8", {"count": 1, "type": "nvidia-l4"})
    assert template["machine_type"] == "g2-standard-8"
    assert "guest_accelerator" not in template
    assert template["scheduling"]["on_host_maintenance"] == "TERMINATE"


def test_spot_gpu_template() -> None:
    template = _gpu_template("n1-standard-8", {"count": 1, "type": "nvidia-t4"}, spot=True)
    assert template["guest_accelerator"] == [{"type": "nvidia-tesla-t4", "count": 1}]
    assert template["scheduling"]["provisioning_model"] == "SPOT"
    assert template["scheduling"]["on_host_maintenance"] == "TERMINATE"
