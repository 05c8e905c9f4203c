"""The reaper's entry point on GCP (`python -m deploy.cloud.reaper --cloud gcp`), as the hub
VM's periodic unit runs it, against the fake Compute API named by the endpoints file a
simulated VM would have (GRATICULE_GOOGLE_ENDPOINTS here; the VM's credentials would come
from its metadata server, which the fake does not need: it takes any caller)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from google.auth.credentials import AnonymousCredentials

from deploy.cloud.gcp import GCPMachines
from deploy.cloud.google_clients import ENDPOINTS_VARIABLE
from deploy.cloud.machines import MachineSpec
from tests.support.gce.server import running_fake_compute
from tests.support.gce.setup import network, template

PROJECT = "oceanlab-prod"
ZONE = "us-central1-b"


def test_the_reaper_deletes_unknown_and_stopped_machines_and_keeps_the_rest(tmp_path):
    with running_fake_compute(PROJECT) as fake:
        network(fake, {"us-central1": "10.20.0.0/24"})
        path = template(fake, "oceanlab-small", "n2-standard-4")
        machines = GCPMachines(PROJECT, [ZONE], client_options=fake.client_options(),
                               credentials=AnonymousCredentials())
        tags = {"platform": "oceanlab", "role": "worker", "cluster": "c0ffee"}
        names = ["oceanlab-known", "oceanlab-orphan", "oceanlab-stopped"]
        for name in names:
            machines.launch(MachineSpec(name=name, template=path, tags=tags))
        machines.launch(MachineSpec(name="oceanlab-hub", template=path, tags={"platform": "oceanlab", "role": "hub"}))
        machines.launch(MachineSpec(name="other-worker", template=path, tags={**tags, "platform": "other"}))
        fake.power_off("oceanlab-stopped")  # its dead-man switch fired

        endpoints = tmp_path / "google-endpoints.json"
        endpoints.write_text(json.dumps({"compute": fake.url}))
        known = tmp_path / "known.json"
        known.write_text(json.dumps({"machine_ids": ["oceanlab-known", "oceanlab-stopped"]}))
        environment = {**os.environ, ENDPOINTS_VARIABLE: str(endpoints), "PYTHONPATH": os.getcwd()}
        command = [sys.executable, "-m", "deploy.cloud.reaper", "--cloud", "gcp", "--platform", "oceanlab",
                   "--project", PROJECT, "--zone", ZONE, "--known", str(known), "--grace", "0"]
        dry = subprocess.run([*command, "--dry-run"], env=environment, capture_output=True, text=True, timeout=120)
        assert dry.returncode == 0, dry.stderr
        assert {line.split()[-1] for line in dry.stdout.splitlines() if line.startswith("would terminate")} == \
            {"oceanlab-orphan", "oceanlab-stopped"}
        assert len(fake.instances()) == 5

        done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "2 terminated, 1 known" in done.stdout
        assert sorted(i["name"] for i in fake.instances()) == ["oceanlab-hub", "oceanlab-known", "other-worker"]


def test_no_token_from_the_metadata_server_is_a_clear_failure_that_deletes_nothing(tmp_path):
    """On a VM whose metadata server does not answer (here: pointed at a closed local port, so
    the token is asked for before any request could leave), exit 1 and one line, no traceback."""
    known = tmp_path / "known.json"
    known.write_text("[]")
    environment = {key: value for key, value in os.environ.items() if key != ENDPOINTS_VARIABLE}
    environment.update(PYTHONPATH=os.getcwd(), GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9")
    result = subprocess.run([sys.executable, "-m", "deploy.cloud.reaper", "--cloud", "gcp", "--platform", "oceanlab",
                             "--project", PROJECT, "--zone", ZONE, "--known", str(known)],
                            env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("reaper: gcp compute instances.aggregatedList failed")
