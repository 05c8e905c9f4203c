"""`platform logs` for a gcp target, through the real CLI, against the Cloud Logging fake
(tests/support/gcp/cloud_logging.py, validated against Logging's discovery document),
reached by google-cloud-logging through the endpoints file `GRATICULE_GOOGLE_ENDPOINTS`
names. The lines are shipped as the hub VM ships them (deploy.vm.logship's Shipper with
the Cloud Logging sink); the fake routes them into the platform's log bucket by the
rendered sink's filter, and `platform logs` reads that bucket's view, as on GCP."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import logging_v2

from deploy.cloud.gcp_log_sink import CloudLoggingSink
from deploy.cloud.google_clients import ENDPOINTS_VARIABLE
from deploy.vm.logship import Offsets, Shipper
from modules.gcp.logs import log_filter
from modules.gcp.startup_script import log_name
from tests.support.gcp.cloud_logging import running_cloud_logging
from tests.support.procs import kill_tree

REPO = Path(__file__).resolve().parent.parent
NAME = "glogtest"
PROJECT = "oceanlab-prod"
BUCKET = f"projects/{PROJECT}/locations/us-central1/buckets/{NAME}-logs"
RESOURCE = {"type": "gce_instance", "labels": {"instance_id": "99", "zone": "us-central1-a", "project_id": PROJECT}}
PLATFORM_YAML = f"""\
apiVersion: graticule/v1
name: {NAME}
target: gcp
cloud:
  gcp: {{project: {PROJECT}, region: us-central1, vpc_cidr: 10.50.0.0/16, egress: nat, state_bucket: {NAME}-tfstate}}
hub:
  auth: {{provider: local}}
  instance: {{gcp: e2-standard-2}}
  default_profile: small
groups:
  admins: {{admin: true}}
  ocean: {{profiles: [small], environments: [default]}}
users:
  - {{name: alice, groups: [admins, ocean]}}
profiles:
  small: {{cpu: 1, memory: 1GiB, instance: {{gcp: e2-standard-2}}}}
dask:
  default_profile: small
environments:
  default: {{python: "3.11", packages: ["dask[distributed]==2026.8.0"]}}
"""


@pytest.fixture(scope="module")
def logging_fake():
    with running_cloud_logging(PROJECT) as fake:
        fake.add_sink(BUCKET, log_filter(SimpleNamespace(name=NAME)))  # the rendered sink's filter
        yield fake


@pytest.fixture(scope="module")
def site(tmp_path_factory, logging_fake) -> Path:
    """An operator's checkout of an applied gcp platform: platform.yaml and build/outputs.json."""
    workdir = tmp_path_factory.mktemp("operator")
    (workdir / "platform.yaml").write_text(PLATFORM_YAML)
    (workdir / "build").mkdir()
    (workdir / "build" / "outputs.json").write_text(json.dumps({
        "hub_instance": f"{NAME}-hub", "hub_zone": "us-central1-a", "project": PROJECT, "log_bucket": BUCKET}))
    (workdir / "endpoints.json").write_text(json.dumps({"logging": logging_fake.url}))
    return workdir


def cli_env(site: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("GRATICULE_", "GOOGLE_", "GCE_"))}
    environment[ENDPOINTS_VARIABLE] = str(site / "endpoints.json")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return environment


def platform(site: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploy.cli.main", *args], cwd=site, env=cli_env(site),
                          capture_output=True, text=True, timeout=300)


def shipper(logging_fake, log_dir: Path, state: Path) -> Shipper:
    """The hub VM's log shipper (its sink pointed at the fake)."""
    client = logging_v2.Client(project=PROJECT, credentials=AnonymousCredentials(), _use_grpc=False,
                               client_options={"api_endpoint": logging_fake.url})
    return Shipper(log_dir, Offsets(state), CloudLoggingSink(PROJECT, log_name(NAME), RESOURCE, f"{NAME}-hub",
                                                             client=client))


def test_logs_print_what_logship_shipped_newest_last(site, logging_fake, tmp_path):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "hub.log").write_text("".join(f"hub line {n}\n" for n in range(1_205)))
    (log_dir / "gateway.log").write_text("gateway started\n")
    assert shipper(logging_fake, log_dir, tmp_path / "offsets.json").ship_once() == 1_206

    done = platform(site, "logs", "hub")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"hub line {n}" for n in range(1_005, 1_205)]  # the last 200, oldest first
    last = platform(site, "logs", "hub", "--lines", "2")
    assert last.stdout == "hub line 1203\nhub line 1204\n"
    everything = platform(site, "logs", "hub", "--lines", "0")  # more than one page of entries.list
    assert len(everything.stdout.splitlines()) == 1_205
    assert platform(site, "logs", "gateway").stdout == "gateway started\n"
    lists = [json.loads(r["body"]) for r in logging_fake.requests if r.get("method_id") == "logging.entries.list"]
    assert {name for body in lists for name in body["resourceNames"]} == {f"{BUCKET}/views/_AllLogs"}

    unknown = platform(site, "logs", "nosuch")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "no entries in the log" in unknown.stderr and "graticule-glogtest%2Fhub%2Fnosuch" in unknown.stderr


def test_follow_prints_the_last_lines_then_each_new_one_once(site, logging_fake, tmp_path):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    log = log_dir / "proxy.log"
    log.write_text("proxy one\nproxy two\n")
    ship = shipper(logging_fake, log_dir, tmp_path / "offsets.json")
    ship.ship_once()
    follower = subprocess.Popen([sys.executable, "-m", "deploy.cli.main", "logs", "proxy", "--lines", "1", "--follow"],
                                cwd=site, env=cli_env(site), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        printed: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [printed.put(line) for line in follower.stdout], daemon=True).start()
        assert printed.get(timeout=60) == "proxy two\n"
        for batch in (["three"], ["four", "five"]):
            with log.open("a") as handle:
                handle.write("".join(f"proxy {word}\n" for word in batch))
            ship.ship_once()
            assert [printed.get(timeout=60) for _ in batch] == [f"proxy {word}\n" for word in batch]
        with pytest.raises(queue.Empty):
            printed.get(timeout=3)  # nothing twice
    finally:
        kill_tree(follower.pid)
        follower.wait(timeout=30)


def test_a_platform_not_applied_yet_is_a_located_error(site, tmp_path):
    (tmp_path / "platform.yaml").write_text(PLATFORM_YAML)
    (tmp_path / "endpoints.json").write_text((site / "endpoints.json").read_text())
    done = platform(tmp_path, "logs", "hub")
    assert done.returncode == 2 and "run `platform apply` first" in done.stderr and "Traceback" not in done.stderr


def test_a_log_bucket_cloud_logging_does_not_have_is_a_clear_error(site, tmp_path):
    (tmp_path / "platform.yaml").write_text(PLATFORM_YAML)
    (tmp_path / "endpoints.json").write_text((site / "endpoints.json").read_text())
    (tmp_path / "build").mkdir()
    gone = f"projects/{PROJECT}/locations/us-central1/buckets/deleted-logs"
    outputs = {"project": PROJECT, "hub_zone": "us-central1-a", "log_bucket": gone}
    (tmp_path / "build" / "outputs.json").write_text(json.dumps(outputs))
    done = platform(tmp_path, "logs", "hub")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"no log view {gone}/views/_AllLogs" in done.stderr
