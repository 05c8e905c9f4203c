"""Sizes of the machine types Nebari configs name: vCPUs, memory, GPUs, a list price.

A small table of the importer's own, on purpose: issue 11 is adding bundled machine
catalogs under render/; once merged, `machine()` should read those instead
(TODO(shared-catalog)). AWS sizes are checked against moto's instance_types.json in the
tests. Prices are on-demand list prices (AWS us-east-1, GCP us-central1, USD per hour),
used only when the platform's own price table has no entry for a type; the import then
marks them to review.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Machine:
    name: str
    vcpus: int
    memory_gib: float
    gpus: int = 0
    gpu_type: str | None = None  # graticule's name, e.g. nvidia-t4
    hourly_usd: float | None = None

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * 1024**3)


def _family(rows: list[tuple]) -> dict[str, Machine]:
    return {row[0]: Machine(*row) for row in rows}


AWS: dict[str, Machine] = _family(
    [
        ("t3.medium", 2, 4, 0, None, 0.0416),
        ("t3.large", 2, 8, 0, None, 0.0832),
        ("t3.xlarge", 4, 16, 0, None, 0.1664),
        ("t3.2xlarge", 8, 32, 0, None, 0.3328),
        ("m5.large", 2, 8, 0, None, 0.096),
        ("m5.xlarge", 4, 16, 0, None, 0.192),
        ("m5.2xlarge", 8, 32, 0, None, 0.384),
        ("m5.4xlarge", 16, 64, 0, None, 0.768),
        ("m5.8xlarge", 32, 128, 0, None, 1.536),
        ("m5.12xlarge", 48, 192, 0, None, 2.304),
        ("m5.16xlarge", 64, 256, 0, None, 3.072),
        ("m5.24xlarge", 96, 384, 0, None, 4.608),
        ("m6i.large", 2, 8, 0, None, 0.096),
        ("m6i.xlarge", 4, 16, 0, None, 0.192),
        ("m6i.2xlarge", 8, 32, 0, None, 0.384),
        ("m6i.4xlarge", 16, 64, 0, None, 0.768),
        ("m6i.8xlarge", 32, 128, 0, None, 1.536),
        ("m6i.16xlarge", 64, 256, 0, None, 3.072),
        ("r5.large", 2, 16, 0, None, 0.126),
        ("r5.xlarge", 4, 32, 0, None, 0.252),
        ("r5.2xlarge", 8, 64, 0, None, 0.504),
        ("r5.4xlarge", 16, 128, 0, None, 1.008),
        ("c5.xlarge", 4, 8, 0, None, 0.17),
        ("c5.2xlarge", 8, 16, 0, None, 0.34),
        ("c5.4xlarge", 16, 32, 0, None, 0.68),
        ("g4dn.xlarge", 4, 16, 1, "nvidia-t4", 0.526),
        ("g4dn.2xlarge", 8, 32, 1, "nvidia-t4", 0.752),
        ("g4dn.4xlarge", 16, 64, 1, "nvidia-t4", 1.204),
        ("g4dn.8xlarge", 32, 128, 1, "nvidia-t4", 2.176),
        ("g4dn.12xlarge", 48, 192, 4, "nvidia-t4", 3.912),
        ("g5.xlarge", 4, 16, 1, "nvidia-a10g", 1.006),
        ("g5.2xlarge", 8, 32, 1, "nvidia-a10g", 1.212),
        ("g5.4xlarge", 16, 64, 1, "nvidia-a10g", 1.624),
        ("g5.12xlarge", 48, 192, 4, "nvidia-a10g", 5.672),
    ]
)

GCP: dict[str, Machine] = _family(
    [
        ("e2-standard-2", 2, 8, 0, None, 0.067),
        ("e2-standard-4", 4, 16, 0, None, 0.134),
        ("e2-standard-8", 8, 32, 0, None, 0.268),
        ("e2-standard-16", 16, 64, 0, None, 0.536),
        ("e2-highmem-4", 4, 32, 0, None, 0.181),
        ("e2-highmem-8", 8, 64, 0, None, 0.362),
        ("n1-standard-2", 2, 7.5, 0, None, 0.095),
        ("n1-standard-4", 4, 15, 0, None, 0.19),
        ("n1-standard-8", 8, 30, 0, None, 0.38),
        ("n1-standard-16", 16, 60, 0, None, 0.76),
        ("n1-highmem-4", 4, 26, 0, None, 0.237),
        ("n1-highmem-8", 8, 52, 0, None, 0.473),
        ("n2-standard-2", 2, 8, 0, None, 0.097),
        ("n2-standard-4", 4, 16, 0, None, 0.194),
        ("n2-standard-8", 8, 32, 0, None, 0.388),
        ("n2-standard-16", 16, 64, 0, None, 0.777),
        ("n2-standard-32", 32, 128, 0, None, 1.554),
        ("g2-standard-4", 4, 16, 1, "nvidia-l4", 0.707),
        ("g2-standard-8", 8, 32, 1, "nvidia-l4", 0.854),
        ("a2-highgpu-1g", 12, 85, 1, "nvidia-a100", 3.673),
    ]
)

# GPUs attached to GCP machine types (guest_accelerators), per GPU and hour.
GCP_ACCELERATORS: dict[str, float] = {
    "nvidia-t4": 0.35,
    "nvidia-l4": 0.56,
    "nvidia-v100": 2.48,
    "nvidia-p100": 1.46,
    "nvidia-p4": 0.60,
    "nvidia-k80": 0.45,
    "nvidia-a100": 2.93,
}

# AWS GPU families and the GPU each carries (for types the table above lacks).
AWS_GPU_FAMILIES = {
    "g4dn": "nvidia-t4",
    "g5": "nvidia-a10g",
    "g6": "nvidia-l4",
    "p3": "nvidia-v100",
    "p4d": "nvidia-a100",
    "p5": "nvidia-h100",
}

# General-purpose types to choose from when the Nebari cloud has no equivalent here.
GENERAL_PURPOSE = {"aws": "m6i.", "gcp": "n2-standard-"}

CATALOGS = {"aws": AWS, "gcp": GCP}


def machine(cloud: str, name: str) -> Machine | None:
    return CATALOGS.get(cloud, {}).get(name)


def gcp_gpu_type(accelerator: str) -> str:
    """GCP's accelerator name to graticule's: nvidia-tesla-t4 -> nvidia-t4."""
    return accelerator.lower().replace("nvidia-tesla-", "nvidia-")


def aws_gpu_type(instance_type: str) -> str | None:
    known = machine("aws", instance_type)
    if known and known.gpu_type:
        return known.gpu_type
    return AWS_GPU_FAMILIES.get(instance_type.split(".")[0])


def fits(candidate: Machine, cpu: int, memory: int, gpus: int) -> bool:
    return candidate.vcpus >= cpu and candidate.memory_bytes >= memory and candidate.gpus >= gpus


def smallest_fit(candidates: list[Machine], cpu: int, memory: int, gpus: int) -> Machine | None:
    fitting = [m for m in candidates if fits(m, cpu, memory, gpus)]
    return min(fitting, key=lambda m: (m.vcpus, m.memory_gib, m.gpus, m.hourly_usd or 0), default=None)


def general_purpose(cloud: str) -> list[Machine]:
    prefix = GENERAL_PURPOSE[cloud]
    return [m for name, m in CATALOGS[cloud].items() if name.startswith(prefix)]
