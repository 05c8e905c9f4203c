"""Notebook servers on GCP, what render makes for them: the hub runs the VM spawner on gcp; the
firewall lets only the hub's proxy reach a notebook instance (its own network tag, not the
workers'), on the single-user port, and lets it reach only the hub's proxy and scheduler
proxy; the hub may attach and read its users' home disks, and only the platform's."""

from __future__ import annotations

import json
from types import SimpleNamespace

from deploy.hub.vm_spawner import SERVER_PORT, VMSpawner
from modules.gcp.firewall import NOTEBOOK_PORT, hub_tag, worker_tag
from modules.gcp.identity import LAUNCH_PERMISSIONS, READ_PERMISSIONS
from modules.naming import HUB_PORT, SCHEDULER_PORT, notebook_tag
from render.build import render
from render.hub_config import hub_data
from render.validate import validate_text
from tests.support.gcp_hub import platform_yaml
from tests.support.simulator.gce_firewall import Member, ingress_rules, rules_from_stack

PLATFORM = "oceanlab"
HUB, ALICE_NB, BOB_WORKER, BOB_NB = "10.10.0.2", "10.10.0.3", "10.10.0.4", "10.10.0.5"


def _stack() -> dict:
    return json.loads(render(validate_text(platform_yaml()))["terraform/gcp/main.tf.json"])


def test_only_the_hubs_proxy_reaches_a_notebook_instance():
    assert NOTEBOOK_PORT == SERVER_PORT
    rules = rules_from_stack(_stack(), "oceanlab-prod")
    members = [Member(HUB, (hub_tag(PLATFORM),), ""), Member(ALICE_NB, (notebook_tag(PLATFORM),), ""),
               Member(BOB_WORKER, (worker_tag(PLATFORM),), ""), Member(BOB_NB, (notebook_tag(PLATFORM),), "")]
    notebook = ingress_rules(rules, (notebook_tag(PLATFORM),), "", members)
    accepted = [line for line in notebook if line.endswith("accept")]
    assert accepted == [f"ip saddr {HUB} meta l4proto tcp tcp dport {{ {NOTEBOOK_PORT} }} accept"]
    assert notebook[-1] == "ip saddr 0.0.0.0/0 drop"  # bob's worker and bob's server: nothing
    # a worker takes nothing from notebook servers (they are not workers any more)
    worker = ingress_rules(rules, (worker_tag(PLATFORM),), "", members)
    assert not any(ALICE_NB in line or BOB_NB in line for line in worker)
    # the hub takes the hub API and the scheduler proxy from them, nothing else
    hub = ingress_rules(rules, (hub_tag(PLATFORM),), "", members)
    from_notebooks = [line for line in hub if ALICE_NB in line]
    ports = f"{HUB_PORT}, {SCHEDULER_PORT}"
    assert from_notebooks == [f"ip saddr {ALICE_NB} meta l4proto tcp tcp dport {{ {ports} }} accept"]


def test_the_hub_may_attach_and_read_only_its_platforms_disks():
    assert "compute.disks.use" in LAUNCH_PERMISSIONS and {"compute.disks.get", "compute.disks.list"} <= set(
        READ_PERMISSIONS)
    identity = _stack()["resource"]
    roles = identity["google_project_iam_custom_role"]
    assert "compute.disks.use" in roles["hub_launch"]["permissions"]
    condition = identity["google_project_iam_member"]["hub_launch"]["condition"]["expression"]
    # home disks are named `<platform>-home-<user>`: inside the launch condition's prefix; the hub's own are not
    assert f'.startsWith("{PLATFORM}-")' in condition and f'"/disks/{PLATFORM}-hub-state"' in condition


def test_the_hub_runs_the_vm_spawner_on_gcp(tmp_path, monkeypatch):
    from jupyterhub.app import JupyterHub

    from render.hub_config import render_hub

    text = platform_yaml()
    assert hub_data(validate_text(text), "gcp")["spawner_class"] == "deploy.hub.vm_spawner.VMSpawner"
    state = tmp_path / "state"
    for key, value in {"GRATICULE_STATE_DIR": str(state), "GRATICULE_HUB_URL": "http://127.0.0.1:18123",
                       "GRATICULE_GATEWAY_API_TOKEN": "t1", "GRATICULE_ADMIN_API_TOKEN": "t2"}.items():
        monkeypatch.setenv(key, value)
    for relative, data in render_hub(validate_text(text), "gcp").items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(data)
    app = JupyterHub()
    app.load_config_file(str(tmp_path / "hub" / "jupyterhub_config.py"))
    config = app.config
    assert config.VMSpawner.cloud == "gcp" and config.VMSpawner.platform_name == PLATFORM
    assert config.JupyterHub.slow_spawn_timeout == 0
    spawner = VMSpawner(config=config, user=SimpleNamespace(name="alice"))
    assert spawner.cloud == "gcp" and type(spawner.on_cloud).__name__ == "GcpNotebooks"
    assert spawner.on_cloud.home_device == "/dev/disk/by-id/google-home"


def test_the_spawner_on_the_hub_vm_needs_no_node():
    """The hub VM has no Node.js: nothing the spawner runs may import cdktf's constructs (jsii)."""
    import subprocess
    import sys

    from tests.conftest import REPO

    program = ("import sys\nfrom types import SimpleNamespace\nfrom deploy.hub import vm_clouds\n"
               "part = vm_clouds.GcpNotebooks(SimpleNamespace(platform_name='oceanlab'))\n"
               "assert part.network_groups() == ('oceanlab-notebook',)\n"
               "import deploy.hub.vm_spawner, deploy.targets.cloud_teardown\n"
               "print(sorted(m for m in sys.modules if m.split('.')[0] in ('constructs', 'jsii', 'cdktf')))\n")
    done = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
