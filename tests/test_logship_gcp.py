"""deploy.vm.logship into Cloud Logging (deploy.cloud.gcp_log_sink), against the Cloud
Logging fake (tests/support/gcp/cloud_logging.py, validated against Logging's discovery
document): batches within Cloud Logging's limits, one log per component, entries the
platform's rendered sink routes into its log bucket, a refused batch shipped at the next
pass and only once, a restart resuming where it stopped, a rotated file read again.
Reading them back through `platform logs` is tests/test_gcp_logs_cli.py; on the hub VM,
tests/test_gcp_logs_e2e.py."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import logging_v2

from deploy.cloud.gcp_log_sink import LIMITS, RESOURCE_NAME_LABEL, CloudLoggingSink, log_name
from deploy.vm.logship import Line, Offsets, Shipper, batches
from modules.gcp.logs import log_filter
from tests.support.gcp.cloud_logging import MAX_ENTRY_BYTES, running_cloud_logging

PROJECT = "oceanlab-prod"
PLATFORM = "lab"
PREFIX = f"graticule-{PLATFORM}"
BUCKET = f"projects/{PROJECT}/locations/us-central1/buckets/{PLATFORM}-logs"
RESOURCE = {"type": "gce_instance", "labels": {"instance_id": "4242", "zone": "us-central1-a", "project_id": PROJECT}}


@pytest.fixture
def fake():
    with running_cloud_logging(PROJECT) as running:
        running.add_sink(BUCKET, log_filter(SimpleNamespace(name=PLATFORM)))  # the rendered sink's filter
        yield running


def sink(fake, instance: str = f"{PLATFORM}-hub") -> CloudLoggingSink:
    client = logging_v2.Client(project=PROJECT, credentials=AnonymousCredentials(), _use_grpc=False,
                               client_options={"api_endpoint": fake.url})
    return CloudLoggingSink(PROJECT, PREFIX, RESOURCE, instance, client=client)


def hub_log(component: str = "hub") -> str:
    return log_name(PROJECT, PREFIX, f"hub/{component}")


def writes(fake) -> list[dict]:
    return [json.loads(r["body"]) for r in fake.requests if r.get("method_id") == "logging.entries.write"]


def test_log_names_are_per_component_and_url_encoded():
    assert hub_log("gateway") == "projects/oceanlab-prod/logs/graticule-lab%2Fhub%2Fgateway"


def test_batches_keep_to_cloud_loggings_limits():
    lines = [Line(f"line {n}", n + 1) for n in range(LIMITS.max_events * 2 + 3)]
    assert [len(b.messages) for b in batches(lines, LIMITS)] == [LIMITS.max_events, LIMITS.max_events, 3]
    big = "x" * (200_000 - LIMITS.overhead)
    cut = list(batches([Line(big, n) for n in range(12)], LIMITS))
    assert [len(b.messages) for b in cut] == [5, 5, 2]  # 1 MiB of text a batch
    (huge,) = next(iter(batches([Line("é" * 200_000, 1)], LIMITS))).messages
    assert LIMITS.max_message_bytes - 1 <= len(huge.encode()) <= LIMITS.max_message_bytes


def test_lines_land_in_one_log_per_component_routed_into_the_platforms_bucket(fake, tmp_path):
    (tmp_path / "hub.log").write_text("one\n\ntwo\npartial")
    (tmp_path / "gateway.log").write_text("gateway started\n" + "é" * 300_000 + "\n")
    shipper = Shipper(tmp_path, Offsets(tmp_path / "offsets.json"), sink(fake))
    assert shipper.ship_once() == 4
    assert fake.texts(hub_log()) == ["one", "two"]  # no blank line, no partial one
    gateway = fake.texts(hub_log("gateway"))
    assert gateway[0] == "gateway started" and len(gateway[1].encode()) <= LIMITS.max_message_bytes
    assert all(len(json.dumps(e, ensure_ascii=False).encode()) <= MAX_ENTRY_BYTES for e in fake.entries)
    # the resource and label the rendered sink routes by: the bucket `platform logs` reads has them all
    assert fake.texts(hub_log(), bucket=BUCKET) == ["one", "two"]
    entry = next(e for e in fake.entries if e["textPayload"] == "one")
    assert entry["resource"] == RESOURCE and entry["labels"] == {RESOURCE_NAME_LABEL: f"{PLATFORM}-hub"}
    # another platform's instance in the project is not routed into this platform's bucket
    (tmp_path / "hub.log").write_text("elsewhere\n")
    Shipper(tmp_path, Offsets(tmp_path / "other.json"), sink(fake, "other-hub")).ship_once()
    assert "elsewhere" in fake.texts(hub_log()) and "elsewhere" not in fake.texts(hub_log(), bucket=BUCKET)


def test_a_refused_batch_is_shipped_at_the_next_pass_and_only_once(fake, tmp_path, capsys):
    (tmp_path / "hub.log").write_text("a\nb\n")
    offsets_file = tmp_path / "state" / "offsets.json"
    shipper = Shipper(tmp_path, Offsets(offsets_file), sink(fake))
    assert shipper.ship_once() == 2
    with (tmp_path / "hub.log").open("a") as handle:
        handle.write("c\n")
    fake.fail_next(503)
    assert shipper.ship_once() == 0  # refused: the offset stays before "c"
    assert "entries.write to" in capsys.readouterr().err
    assert json.loads(offsets_file.read_text())["hub.log"]["offset"] == len("a\nb\n")
    assert shipper.ship_once() == 1 and shipper.ship_once() == 0
    assert fake.texts(hub_log()) == ["a", "b", "c"]


def test_a_restart_resumes_and_a_rotated_file_is_read_from_its_start(fake, tmp_path):
    log = tmp_path / "hub.log"
    log.write_text("first\n")
    state = tmp_path / "offsets.json"
    Shipper(tmp_path, Offsets(state), sink(fake)).ship_once()
    with log.open("a") as handle:
        handle.write("while down\n")
    again = Shipper(tmp_path, Offsets(state), sink(fake))  # a new process: offsets from the file
    assert again.ship_once() == 1
    log.rename(tmp_path / "hub.log.1")  # rotated: the old file is no *.log any more
    log.write_text("after rotation\n")
    assert again.ship_once() == 1
    assert fake.texts(hub_log()) == ["first", "while down", "after rotation"]
    assert json.loads(state.read_text())["hub.log"] == {"inode": log.stat().st_ino, "offset": len("after rotation\n")}


def test_equal_timestamps_keep_the_files_order_and_far_future_ones_are_reported(fake, tmp_path, capsys):
    (tmp_path / "hub.log").write_text("".join(f"{n}\n" for n in range(30)))
    stamp = time.time() - 60
    Shipper(tmp_path, Offsets(tmp_path / "offsets.json"), sink(fake), clock=lambda: stamp).ship_once()
    assert fake.texts(hub_log()) == [str(n) for n in range(30)]  # one timestamp: insertId order
    assert len({e["timestamp"] for e in fake.entries}) == 1

    (tmp_path / "hub.log").write_text("from the future\n")
    offsets = Offsets(tmp_path / "future.json")
    Shipper(tmp_path, offsets, sink(fake), clock=lambda: time.time() + 3 * 86_400).ship_once()
    assert "Cloud Logging rejected events of hub.log" in capsys.readouterr().err
    assert offsets.files["hub.log"]["offset"] == len("from the future\n")  # not retried for ever
    assert "from the future" not in fake.texts()


def test_batches_go_out_as_entries_write_calls_within_the_limits(fake, tmp_path):
    (tmp_path / "hub.log").write_text("".join(f"line {n}\n" for n in range(2_500)))
    Shipper(tmp_path, Offsets(tmp_path / "offsets.json"), sink(fake)).ship_once()
    sent = writes(fake)
    assert [len(body["entries"]) for body in sent] == [1_000, 1_000, 500]
    assert all(body["logName"] == hub_log() and body["partialSuccess"] for body in sent)
    assert len(fake.texts(hub_log())) == 2_500
