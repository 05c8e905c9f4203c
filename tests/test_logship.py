"""deploy.vm.logship's parts: batches within PutLogEvents' limits, complete lines only,
offsets that survive a restart and a refused batch. The shipping end to end (the module
run as the VM runs it, then `platform logs`) is in tests/test_cloud_runtime_cli.py."""

from __future__ import annotations

import json

import pytest

from deploy.cloud.log_sink import (
    EVENT_OVERHEAD,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_MESSAGE_BYTES,
    CloudWatchSink,
    event_size,
    fit,
)
from deploy.vm.logship import Line, Offsets, Shipper, batches, complete_lines
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)


def test_batches_keep_to_the_event_count_limit_and_the_order():
    lines = [Line(f"line {n}", n + 1) for n in range(MAX_BATCH_EVENTS * 2 + 5)]
    cut = list(batches(lines))
    assert [len(b.messages) for b in cut] == [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS, 5]
    assert [b.end for b in cut] == [MAX_BATCH_EVENTS, 2 * MAX_BATCH_EVENTS, 2 * MAX_BATCH_EVENTS + 5]
    assert [m for b in cut for m in b.messages] == [line.message for line in lines]


def test_batches_keep_to_the_byte_limit_counting_the_overhead():
    message = "x" * (100_000 - EVENT_OVERHEAD)  # 100,000 bytes each with the overhead
    cut = list(batches([Line(message, n) for n in range(25)]))
    assert [len(b.messages) for b in cut] == [10, 10, 5]
    assert all(sum(event_size(m) for m in b.messages) <= MAX_BATCH_BYTES for b in cut)
    # Exactly at the limit still fits one batch.
    exact = "y" * (MAX_BATCH_BYTES // 4 - EVENT_OVERHEAD)
    assert [len(b.messages) for b in batches([Line(exact, n) for n in range(4)])] == [4]


def test_an_oversized_line_is_cut_to_what_cloudwatch_takes():
    (batch,) = batches([Line("é" * MAX_MESSAGE_BYTES, 7)])
    (message,) = batch.messages
    assert len(message.encode()) <= MAX_MESSAGE_BYTES and len(message.encode()) >= MAX_MESSAGE_BYTES - 1
    assert fit("short") == "short"


def test_complete_lines_skip_blanks_and_leave_a_partial_line():
    lines, end = complete_lines(b"one\r\n\n  \ntwo\npart", 100)
    assert [(line.message, line.end) for line in lines] == [("one", 105), ("two", 113)]
    assert end == 113  # the partial line waits for its newline
    assert complete_lines(b"", 5) == ([], 5)
    assert complete_lines("café\n".encode(), 0)[0][0].message == "café"


def test_offsets_restart_a_file_that_was_replaced_or_truncated(tmp_path):
    path = tmp_path / "state" / "offsets.json"
    offsets = Offsets(path)
    assert offsets.where("hub.log", inode=1, size=50) == 0
    offsets.advance("hub.log", inode=1, offset=40)
    again = Offsets(path)  # as after a restart
    assert again.where("hub.log", inode=1, size=50) == 40
    assert again.where("hub.log", inode=2, size=50) == 0  # rotated: another file
    assert again.where("hub.log", inode=1, size=10) == 0  # truncated
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    path.write_text("{not json")
    assert Offsets(path).files == {}


def test_a_refused_batch_is_shipped_at_the_next_pass_and_only_once(moto_server, tmp_path):  # noqa: F811
    """Against moto's CloudWatch Logs: the log group disappears (puts fail), comes back."""
    logs = moto_server.client("logs")
    group = "/graticule/shiptest"
    logs.create_log_group(logGroupName=group)
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "hub.log").write_text("a\nb\n")
    (log_dir / "proxy.log").write_text("p\n")
    shipper = Shipper(log_dir, Offsets(tmp_path / "offsets.json"), CloudWatchSink(group, client=logs))
    assert shipper.ship_once() == 3

    def messages(stream: str) -> list[str]:
        return [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]]

    assert messages("hub/hub") == ["a", "b"] and messages("hub/proxy") == ["p"]
    logs.delete_log_group(logGroupName=group)
    with (log_dir / "hub.log").open("a") as handle:
        handle.write("c\n")
    assert shipper.ship_once() == 0  # refused: the offset stays before "c"
    assert json.loads((tmp_path / "offsets.json").read_text())["hub.log"]["offset"] == len("a\nb\n")

    logs.create_log_group(logGroupName=group)
    assert shipper.ship_once() == 1
    assert messages("hub/hub") == ["c"]  # the stream was made again; a and b went to the old group
    assert shipper.ship_once() == 0


@pytest.mark.parametrize("blank_tail", ["\n", "\n\n"])
def test_trailing_blank_lines_move_the_offset(moto_server, tmp_path, blank_tail):  # noqa: F811
    logs = moto_server.client("logs")
    group = f"/graticule/blank{len(blank_tail)}"
    logs.create_log_group(logGroupName=group)
    (tmp_path / "hub.log").write_text("x\n" + blank_tail)
    offsets = Offsets(tmp_path / "offsets.json")
    Shipper(tmp_path, offsets, CloudWatchSink(group, client=logs)).ship_once()
    assert offsets.files["hub.log"]["offset"] == len("x\n" + blank_tail)


def test_events_cloudwatch_rejects_for_their_time_are_reported_not_retried(moto_server, tmp_path, capsys):  # noqa: F811
    logs = moto_server.client("logs")
    group = "/graticule/clock"
    logs.create_log_group(logGroupName=group)
    (tmp_path / "hub.log").write_text("from the future\n")
    offsets = Offsets(tmp_path / "offsets.json")
    shipper = Shipper(tmp_path, offsets, CloudWatchSink(group, client=logs), clock=lambda: 4_000_000_000.0)
    shipper.ship_once()
    assert "CloudWatch rejected events of hub.log" in capsys.readouterr().err
    assert offsets.files["hub.log"]["offset"] == len("from the future\n")


def test_a_line_longer_than_a_read_is_shipped_cut_and_not_stuck(moto_server, tmp_path):  # noqa: F811
    from deploy.vm.logship import READ_AT_MOST

    logs = moto_server.client("logs")
    group = "/graticule/long"
    logs.create_log_group(logGroupName=group)
    (tmp_path / "hub.log").write_text("z" * (READ_AT_MOST + 10) + "\nnext\n")
    offsets = Offsets(tmp_path / "offsets.json")
    shipper = Shipper(tmp_path, offsets, CloudWatchSink(group, client=logs))
    assert shipper.ship_once() == 1 and shipper.ship_once() == 2  # the cut line, its tail, then "next"
    events = logs.get_log_events(logGroupName=group, logStreamName="hub/hub", startFromHead=True)["events"]
    assert [len(e["message"]) for e in events] == [MAX_MESSAGE_BYTES, 10, 4]
