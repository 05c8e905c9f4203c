"""A simulated Compute Engine instance: the AWS simulator's sandbox, named and configured as
a GCE guest (hostname = instance name; the startup script as what sim-init runs; the
metadata server's name in /etc/hosts; the Google API endpoints file)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .sandbox import IMDS_ADDRESS, Sandbox

ENDPOINTS_FILE = "etc/graticule/google-endpoints.json"  # inside the instance's root


@dataclass
class GceSandbox(Sandbox):
    name: str = ""
    zone: str = ""

    @property
    def hostname(self) -> str:
        return self.name

    def write_gce_config(self, startup_script: str, endpoints: dict[str, str], project: str) -> None:
        """What the guest finds at boot. sim-init runs /var/lib/cloud/instance/user-data, so the
        startup script goes there (the guest agent runs it as root on GCE, output to the serial
        console: `console_log` here)."""
        cloud = self.root / "var/lib/cloud/instance"
        cloud.mkdir(parents=True, exist_ok=True)
        (cloud / "user-data").write_text(startup_script)
        (self.root / "etc/sim").mkdir(parents=True, exist_ok=True)
        (self.root / "etc/sim/environment").write_text("")
        (self.root / "etc/hostname").write_text(f"{self.name}\n")
        fqdn = f"{self.name}.{self.zone}.c.{project}.internal"
        (self.root / "etc/hosts").write_text(f"127.0.0.1 localhost\n{self.ip} {fqdn} {self.name}\n"
                                             f"{IMDS_ADDRESS} metadata.google.internal metadata\n")
        (self.root / ENDPOINTS_FILE).parent.mkdir(parents=True, exist_ok=True)
        (self.root / ENDPOINTS_FILE).write_text(json.dumps(endpoints, indent=2, sort_keys=True) + "\n")
