"""One instance template per hardware profile: what the gateway launches workers from.

No external IP (no access_config), Shielded VM, disks encrypted with the platform's key,
OS Login and no project-wide SSH keys or serial port; spot profiles are Spot VMs deleted
on preemption; GPU profiles carry their accelerators (which must terminate, not migrate,
on host maintenance). Instances get the default worker account from the template; the
gateway overrides it with the launching user's account and adds the `budget` label that
the user's billing budget filters on.
"""

from __future__ import annotations

from constructs import Construct

from modules import naming
from modules.gcp.base import ident, res
from modules.gcp.firewall import worker_tag
from modules.gcp.spec import GcpSpec, ProfileSpec

IMAGE = "debian-cloud/debian-12"
BOOT_DISK_GB = 50
SHIELDED_VM = {"enable_secure_boot": True, "enable_vtpm": True, "enable_integrity_monitoring": True}
# Instance metadata every VM of the platform carries.
HARDENED_METADATA = {
    "block-project-ssh-keys": "true",
    "enable-oslogin": "TRUE",
    "serial-port-enable": "false",
}
SCOPES = ["cloud-platform"]  # access is decided by IAM on the service account, not scopes


def scheduling(profile: ProfileSpec) -> dict[str, object]:
    if profile.spot:
        return {
            "provisioning_model": "SPOT",
            "preemptible": True,
            "automatic_restart": False,
            "on_host_maintenance": "TERMINATE",
            "instance_termination_action": "DELETE",
        }
    return {
        "provisioning_model": "STANDARD",
        "preemptible": False,
        "automatic_restart": True,
        # VMs with GPUs cannot live-migrate.
        "on_host_maintenance": "TERMINATE" if profile.gpu_type else "MIGRATE",
    }


class InstanceTemplates(Construct):
    def __init__(self, scope: Construct, spec: GcpSpec, subnetwork_id: str, default_account: str,
                 key_id: str) -> None:
        super().__init__(scope, "templates")
        self.templates = {}
        for profile in spec.profiles:
            name = naming.worker_template_name(spec.name, profile.name)
            template = res(self, "google_compute_instance_template", ident(profile.name), {
                "name": name,
                "description": f"graticule {spec.name}: workers of profile {profile.name}",
                "machine_type": profile.machine_type,
                "labels": {"profile": profile.name},
                "tags": [worker_tag(spec.name)],
                "can_ip_forward": False,
                "disk": [{
                    "source_image": IMAGE,
                    "boot": True,
                    "auto_delete": True,
                    "disk_type": "pd-balanced",
                    "disk_size_gb": BOOT_DISK_GB,
                    # Nested disk labels are not reached by the provider's default_labels.
                    "labels": {**spec.labels, "profile": profile.name},
                    "disk_encryption_key": {"kms_key_self_link": key_id},
                }],
                # No access_config block: no external IP.
                "network_interface": [{"subnetwork": subnetwork_id}],
                "service_account": {"email": default_account, "scopes": SCOPES},
                "shielded_instance_config": SHIELDED_VM,
                "scheduling": scheduling(profile),
                "guest_accelerator": (
                    [{"type": profile.gpu_type, "count": profile.gpu_count}]
                    if profile.gpu_type and not profile.gpu_built_in
                    else None
                ),
                "metadata": HARDENED_METADATA,
            })
            self.templates[profile.name] = template
