"""The hub VM's settings (/etc/graticule/vm.json, written by its user data or startup
script) and the AWS clients built from them. boto3 comes from the wheelhouse: it honours
AWS_ENDPOINT_URL and `endpoint_url` in ~/.aws/config (a VPC endpoint by name; the
simulator's moto). On GCP (`cloud: gcp`) the stores come from deploy.vm.gcp_stores."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

RUN_DIR = Path("/run/graticule")  # the units' RuntimeDirectory: secrets and environment files
LOG_DIR = Path("/var/log/graticule")
UNIT_DIR = Path("/etc/systemd/system")


@dataclass(frozen=True)
class VmSettings:
    platform: str
    region: str
    bucket: str
    log_group: str
    state_dir: Path
    state_device: str
    cloud: str = "aws"
    project: str = ""  # GCP's project

    @classmethod
    def load(cls, path: str | Path) -> VmSettings:
        raw = json.loads(Path(path).read_text())
        return cls(platform=raw["platform"], region=raw["region"], bucket=raw["bucket"],
                   log_group=raw["log_group"], state_dir=Path(raw["state_dir"]), state_device=raw["state_device"],
                   cloud=raw.get("cloud", "aws"), project=raw.get("project", ""))

    def client(self, service: str):
        import boto3

        return boto3.client(service, region_name=self.region)


def phase(name: str) -> None:
    """A timestamped line the boot benchmark reads from the console log."""
    print(f"graticule-phase {name} {time.time():.3f}", flush=True)
