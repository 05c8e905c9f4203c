"""Which machines an environment is locked for, and resolving it for one of them.

A lock is installed by the platform's VMs (Linux x86_64, or aarch64 on Arm instance
types) and by the local target, not by the machine that ran `platform lock`: each
environment is resolved once per machine with `uv pip compile --python-platform`, with
hashes, so a lock made on a Mac installs the Linux wheels, and only those files.
"""

from __future__ import annotations

import platform as host
import re

from deploy.environments import uv
from render.schema import Platform

# uv's names of the target platforms: the VMs boot Debian 12 (modules/*/templates.py), whose
# glibc is 2.36, so any wheel up to manylinux_2_36 installs there (debugpy ships 2_34 only).
UV_PLATFORMS = {"x86_64": "x86_64-manylinux_2_36", "aarch64": "aarch64-manylinux_2_36"}
DEFAULT_MACHINE = "x86_64"

# Arm (Graviton) families on AWS: a1, and a `g` after the generation (m7g, c7gn, t4g, g5g).
_AWS_ARM = re.compile(r"^(a1|[a-z]+\d+g[a-z]*)\.")
_GCP_ARM = ("t2a-", "c4a-", "n4a-")  # Tau T2A, Axion C4A/N4A


def is_arm(aws: str | None, gcp: str | None) -> bool:
    return bool((aws and _AWS_ARM.match(aws)) or (gcp and gcp.startswith(_GCP_ARM)))


def machines_of(platform: Platform) -> tuple[str, ...]:
    """x86_64 always (the hub, the local target); aarch64 too when a profile is Arm."""
    arm = any(is_arm(p.instance.aws, p.instance.gcp) for p in platform.profiles.values())
    return (DEFAULT_MACHINE, "aarch64") if arm else (DEFAULT_MACHINE,)


def host_machine() -> str | None:
    """This machine's entry in a lock, None where no lock entry applies (not Linux)."""
    if host.system() != "Linux":
        return None
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(
        host.machine().lower()
    )


def compile_for(requirements: list[str], python: str, machine: str) -> tuple[str, ...]:
    """`requirements` resolved for `machine`: one line per package, `name==version --hash=...`."""
    output = uv.run(
        "pip", "compile", "-", "--quiet", "--no-header", "--no-annotate", "--generate-hashes",
        "--python-version", python, "--python-platform", UV_PLATFORMS[machine],
        stdin="".join(f"{line}\n" for line in requirements),
    )
    return tuple(sorted(_joined(output), key=str.lower))


def _joined(output: str) -> list[str]:
    """uv writes each package over several `\\`-continued lines; one line each is diffable."""
    lines: list[str] = []
    for raw in output.splitlines():
        text = raw.strip().removesuffix("\\").strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("--hash") and lines:
            lines[-1] += f" {text}"
        else:
            lines.append(text)
    return lines


def unhashed(line: str) -> str:
    return line.split(" --hash", 1)[0].strip()
