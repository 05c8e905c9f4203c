"""The hub on GCP, end to end, on the simulated cloud.

The session's platform on the simulated GCP (tests/support/gcp_platform.py, the
`gcp_platform` fixture): Terraform's google provider is not mirrored here, so what the
rendered stack would create is made in the fakes from main.tf.json (the network,
subnetwork, templates, the hub's state disk with its `mount-point` label and the hub
instance with its rendered startup-script metadata in the fake Compute API, checked
against Compute's discovery document; the artifacts bucket in Cloud Storage,
gcp-storage-emulator; the secrets without versions in the Secret Manager fake, checked
against its discovery document), and `platform apply`'s publishing step puts the
wheelhouse (from this machine's installed packages) and the configuration into the bucket.

The GCE machine simulator boots the hub instance from its startup script: a token from
the metadata server, the wheelhouse through Cloud Storage's JSON API, graticule installed
offline with hashes required, `deploy.vm.boot` mounting the state disk, generating the
secrets into Secret Manager and starting the components. Through the rendered load
balancer only (the simulator's front door, with the rendered firewall enforced):

- the hub is healthy; alice logs in (her first login sets her password), gets a token;
- a new user published as a re-apply does logs in (config sync from Cloud Storage);
- the hub replaced (a new instance, the same disk) knows alice's password and token and
  dave, and no secret was generated twice; it has the same private address (the rendered
  static internal address), so the dead-man URL of a machine launched before the
  replacement is answered again;
- the operator's `platform status` and `token` reach it through Compute Engine, Secret
  Manager and the load balancer.
"""

from __future__ import annotations

import json
import shlex

import pytest
from google.auth.credentials import AnonymousCredentials

from deploy.cloud.deadman import UNIT as DEADMAN_UNIT
from deploy.cloud.deadman import DeadMan
from deploy.cloud.gcp import GCPMachines
from deploy.cloud.machines import MachineSpec
from modules import naming
from modules.spec import HUB_PORT
from tests.support.cloud_e2e import eventually
from tests.support.gcp_hub import PROJECT
from tests.support.gcp_platform import GcpPlatform
from tests.support.hub_e2e import Session, token_user, with_user
from tests.support.simulator.gce_sandbox import GceSandbox

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def _versions_added(platform: GcpPlatform) -> list[dict]:
    """Versions added to the hub's own secrets (the rendered ones; machines' secrets are others)."""
    hub_secrets = {s["secret_id"] for s in platform.main["resource"]["google_secret_manager_secret"].values()}
    return [r for r in platform.secret_manager.requests
            if r["path"].endswith(":addVersion") and r["path"].split("/")[-1].split(":")[0] in hub_secrets]


def _operator_commands(platform: GcpPlatform) -> None:
    """`platform status` and `token` from the operator's checkout, after apply."""
    done = platform.cli_unchecked("status", "--json", timeout=120)
    assert done.returncode in (0, 1), done.stderr  # 1: something is down (the gateway may be restarting)
    components = {c["name"]: c for c in json.loads(done.stdout)["components"]}
    assert components["hub-vm"]["up"] is True and components["hub-vm"]["detail"] == "running"
    assert components["hub"]["up"] is True
    token = platform.cli("token", "dave", timeout=120).stdout.strip()
    assert token_user(platform.front, token) == "dave"


def test_hub_boots_from_its_startup_script_serves_follows_and_survives_replacement(gcp_platform: GcpPlatform):
    platform, front, sim = gcp_platform, gcp_platform.front, gcp_platform.sim
    hub = platform.hub_instance()
    original = platform.text
    machines = machine = None
    try:
        box = sim.wait_running(hub)
        console = box.console_log.read_text(errors="replace")
        for phase in ("startup-script", "wheelhouse-download", "wheelhouse-install", "boot"):
            assert f"graticule-phase {phase} " in console, console[-3000:]
        added = _versions_added(platform)
        assert len(added) == len(naming.SECRET_KEYS_GENERATED)  # generated on first boot, into Secret Manager

        # alice logs in (her first login sets her password) and gets a token; nobody else may
        alice = Session(front, "alice")
        assert alice.login().status_code == 302
        token = alice.new_token()
        assert token_user(front, token) == "alice"
        assert Session(front, "mallory").login("whatever-1").status_code != 302

        # a new user published, as a re-apply does: config sync takes it from Cloud Storage
        assert Session(front, "dave").login().status_code != 302
        platform.apply(with_user(original, "dave", "ocean"))
        dave = Session(front, "dave")
        eventually(lambda: dave.login().status_code == 302, 180, lambda: "dave could not log in after the re-publish")

        # a machine launched before the replacement asks the hub's fixed address
        hub_ip = platform.outputs()["hub_private_ip"]
        (address,) = platform.main["resource"]["google_compute_address"].values()
        assert hub_ip == address["address"] == _private_ip(platform, hub) == box.ip
        machines, machine = _probe_machine(platform, f"http://{hub_ip}:{HUB_PORT}/hub/health")
        probe = sim.wait_running(machine, timeout=300)
        deadman_url = eventually(lambda: _deadman_url(probe), 120, lambda: "the probe's dead-man unit never appeared")
        assert deadman_url.startswith(f"http://{hub_ip}:")
        eventually(lambda: _answers(probe, deadman_url), 120, lambda: "the hub did not answer the probe's dead-man URL")

        # the hub replaced: a new instance on the same state disk, at the same address
        platform.stack.delete_hub()
        sim.wait_stopped(box.instance_id, timeout=300)
        assert not _answers(probe, deadman_url)  # nobody there: what the dead-man switch counts
        platform.stack.insert_hub()
        replaced = sim.wait_running(hub, timeout=300)
        assert replaced.instance_id != box.instance_id
        assert _private_ip(platform, hub) == replaced.ip == hub_ip  # the fixed address, taken again
        platform.wait_healthy()
        eventually(lambda: _answers(probe, deadman_url), 180,
                   lambda: "the probe's dead-man URL was not answered by the replaced hub")
        assert Session(front, "alice").login().status_code == 302  # her password, not a new first login
        assert Session(front, "alice").login("a-wrong-password").status_code != 302
        assert token_user(front, token) == "alice"
        assert Session(front, "dave").login().status_code == 302
        assert _versions_added(platform) == added  # the same secrets, none generated again

        _operator_commands(platform)
    except BaseException:
        print(platform.diagnose(hub))  # the instance's logs, before its sandbox goes
        raise
    finally:
        if machines is not None:
            machines.terminate([machine])
            sim.wait_stopped(machine, timeout=300)
        platform.apply(original)


def _private_ip(platform: GcpPlatform, name: str) -> str:
    """The instance's address as Compute has it."""
    (instance,) = [i for i in platform.compute.instances() if i["name"] == name]
    return instance["networkInterfaces"][0]["networkIP"]


def _probe_machine(platform: GcpPlatform, deadman_url: str) -> tuple[GCPMachines, str]:
    """An instance of the platform's small template carrying a dead-man switch on `deadman_url`,
    as a notebook server's (deploy.hub.vm_spawner); unlabelled by platform, so the hub's reaper
    leaves it to this test. It waits an hour before powering off: the test reads what it asks."""
    machines = GCPMachines(PROJECT, [platform.stack.zone], client_options=platform.compute.client_options(),
                           credentials=AnonymousCredentials())
    template = platform.outputs()[naming.instance_template_output("small")]
    spec = MachineSpec(name=f"{platform.hub_instance()}-probe", template=template, tags={"role": "probe"},
                       user_data="#!/bin/sh\necho probe up\n", deadman=DeadMan(deadman_url, after_seconds=3600))
    return machines, machines.launch(spec).id


def _deadman_url(box: GceSandbox) -> str | None:
    """What the machine's dead-man switch asks (deploy/cloud/deadman.py: its unit's ExecStart)."""
    unit = box.exec(["cat", f"/etc/systemd/system/{DEADMAN_UNIT}"]).stdout
    command = next((line for line in unit.splitlines() if line.startswith("ExecStart=")), None)
    return shlex.split(command.removeprefix("ExecStart="))[2] if command else None


def _answers(box: GceSandbox, url: str) -> bool:
    """Whether `url` answers below 500 from inside the machine: what the dead-man switch counts as alive."""
    done = box.exec(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", url])
    return done.stdout.strip().isdigit() and 0 < int(done.stdout.strip()) < 500
