"""`platform logs` for a gcp target, through the real CLI in an operator's checkout of the
platform (`gcp_operator`: tests/support/gcp_operator.py), against the Cloud Logging fake
(tests/support/gcp/cloud_logging.py, validated against Logging's discovery document),
reached by google-cloud-logging through the endpoints file `GRATICULE_GOOGLE_ENDPOINTS`
names. The lines are shipped as the hub VM ships them (deploy.vm.logship's Shipper with
the Cloud Logging sink); the fake routes them into the platform's log bucket by the
rendered sink's filter, and `platform logs` reads that bucket's view, as on GCP."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import logging_v2

from deploy.cloud.gcp_log_sink import CloudLoggingSink
from deploy.vm.logship import Offsets, Shipper
from modules.gcp.startup_script import log_name
from tests.support.gcp.cloud_logging import FakeCloudLogging
from tests.support.gcp_operator import GCP, LOG_BUCKET, NAME, PROJECT, ZONE
from tests.support.procs import kill_tree

RESOURCE = {"type": "gce_instance", "labels": {"instance_id": "99", "zone": ZONE, "project_id": PROJECT}}


def shipper(logging_fake: FakeCloudLogging, log_dir: Path, state: Path) -> Shipper:
    """The hub VM's log shipper (its sink pointed at the fake)."""
    client = logging_v2.Client(project=PROJECT, credentials=AnonymousCredentials(), _use_grpc=False,
                               client_options={"api_endpoint": logging_fake.url})
    return Shipper(log_dir, Offsets(state), CloudLoggingSink(PROJECT, log_name(NAME), RESOURCE, f"{NAME}-hub",
                                                             client=client))


def test_logs_print_what_logship_shipped_newest_last(gcp_operator, tmp_path):
    logging_fake = gcp_operator.logging
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "hub.log").write_text("".join(f"hub line {n}\n" for n in range(1_205)))
    (log_dir / "gateway.log").write_text("gateway started\n")
    assert shipper(logging_fake, log_dir, tmp_path / "offsets.json").ship_once() == 1_206

    done = gcp_operator.cli("logs", "hub")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"hub line {n}" for n in range(1_005, 1_205)]  # the last 200, oldest first
    last = gcp_operator.cli("logs", "hub", "--lines", "2")
    assert last.stdout == "hub line 1203\nhub line 1204\n"
    everything = gcp_operator.cli("logs", "hub", "--lines", "0")  # more than one page of entries.list
    assert len(everything.stdout.splitlines()) == 1_205
    assert gcp_operator.cli("logs", "gateway").stdout == "gateway started\n"
    lists = [json.loads(r["body"]) for r in logging_fake.requests if r.get("method_id") == "logging.entries.list"]
    assert {name for body in lists for name in body["resourceNames"]} == {f"{LOG_BUCKET}/views/_AllLogs"}

    unknown = gcp_operator.cli("logs", "nosuch")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "no entries in the log" in unknown.stderr and f"graticule-{NAME}%2Fhub%2Fnosuch" in unknown.stderr


def test_follow_prints_the_last_lines_then_each_new_one_once(gcp_operator, tmp_path):
    logging_fake = gcp_operator.logging
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    log = log_dir / "proxy.log"
    log.write_text("proxy one\nproxy two\n")
    ship = shipper(logging_fake, log_dir, tmp_path / "offsets.json")
    ship.ship_once()
    follower = subprocess.Popen([sys.executable, "-m", "deploy.cli.main", "logs", "proxy", "--lines", "1", "--follow"],
                                cwd=gcp_operator.dir, env=gcp_operator.cli_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
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


def test_a_platform_not_applied_yet_is_a_located_error(gcp_operator, tmp_path):
    (tmp_path / "platform.yaml").write_text(GCP)
    done = gcp_operator.cli("logs", "hub", cwd=tmp_path)
    assert done.returncode == 2 and "run `platform apply` first" in done.stderr and "Traceback" not in done.stderr


def test_a_log_bucket_cloud_logging_does_not_have_is_a_clear_error(gcp_operator, tmp_path):
    (tmp_path / "platform.yaml").write_text(GCP)
    (tmp_path / "build").mkdir()
    gone = f"projects/{PROJECT}/locations/us-central1/buckets/deleted-logs"
    outputs = {"project": PROJECT, "hub_zone": ZONE, "log_bucket": gone}
    (tmp_path / "build" / "outputs.json").write_text(json.dumps(outputs))
    done = gcp_operator.cli("logs", "hub", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"no log view {gone}/views/_AllLogs" in done.stderr
