"""The GCP stack's inputs: the plain values `modules.gcp` takes, filled from the model.

`synthesize_gcp(platform)` is what `render.terraform.synthesize_target` calls for target
gcp; `gcp_spec` is the conversion, kept apart so tests can build specs directly.
"""

from __future__ import annotations

from render import catalog
from render.cloud_spec import checked_cloud, grants_by_user, shared_fields
from render.schema import Platform

# platform.yaml GPU names -> GCP accelerator types (names not listed pass through).
ACCELERATORS = {
    "nvidia-t4": "nvidia-tesla-t4",
    "nvidia-p4": "nvidia-tesla-p4",
    "nvidia-p100": "nvidia-tesla-p100",
    "nvidia-v100": "nvidia-tesla-v100",
    "nvidia-a100": "nvidia-tesla-a100",
    "nvidia-a100-80gb": "nvidia-a100-80gb",
    "nvidia-h100": "nvidia-h100-80gb",
    "nvidia-l4": "nvidia-l4",
}


def accelerator_type(gpu_type: str) -> str:
    attachable = catalog.load("gcp").accelerators.get(catalog.normalise_gpu(gpu_type))
    return attachable.api_name if attachable else ACCELERATORS.get(gpu_type, gpu_type)


def gpus_built_in(machine_type: str) -> bool:
    """Whether the machine type brings its own GPUs (a2, a3, a4, g2, g4): none to attach."""
    machine = catalog.load("gcp").machine(machine_type)
    return bool(machine and machine.gpu_model)


def gcp_spec(platform: Platform):
    """The plain values the GCP constructs take."""
    from modules.gcp.identity import worker_access
    from modules.gcp.spec import GcpSpec, ProfileSpec

    cloud = checked_cloud(platform, "gcp", "a gcp machine type")
    return GcpSpec(
        **shared_fields(platform, cloud),
        project=cloud.project,
        hub_machine_type=platform.hub.instance.gcp,
        profiles=tuple(
            ProfileSpec(
                name=name,
                machine_type=profile.instance.gcp or "",
                spot=profile.spot,
                gpu_type=accelerator_type(profile.gpu.type) if profile.gpu else None,
                gpu_count=profile.gpu.count if profile.gpu else 0,
                gpu_built_in=bool(profile.gpu) and gpus_built_in(profile.instance.gcp or ""),
            )
            for name, profile in platform.profiles.items()
        ),
        worker_access=worker_access(platform.name, grants_by_user(platform)),
        oauth_client_secret=platform.hub.auth.provider != "local",
    )


def synthesize_gcp(platform: Platform) -> bytes:
    """`terraform/gcp/main.tf.json` for the platform."""
    from modules import tf
    from modules.gcp import stack

    spec = gcp_spec(platform)
    return tf.synthesize(platform.name, lambda root: stack.build(root, spec))
