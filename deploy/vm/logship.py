"""`python -m deploy.vm.logship`: the hub VM's components' logs into CloudWatch Logs (aws)
or Cloud Logging (gcp).

Follows every `*.log` in the log directory (`/var/log/graticule`, where each systemd unit
appends its output) and puts each new complete line into the platform's log group under
the stream `hub/<component>` (the file's name without `.log`), which `platform logs
<component>` reads; on gcp the stream is a log of its own (deploy.cloud.gcp_log_sink).
How far each file was shipped is kept in a small state file, written atomically after
every accepted batch, so a restart resumes where it stopped: a line is shipped twice
only if the VM dies between the sink accepting a batch and that write.
A file that shrank or was replaced (rotation) is read again from its start. Blank lines
are skipped (CloudWatch refuses empty messages); a partial last line waits for its newline.

Settings come from the VM's `/etc/graticule/vm.json` (`cloud`, `log_group`, `region`,
`project`, `state_dir`); the options override them. The sink's limits (deploy.cloud.log_sink,
deploy.cloud.gcp_log_sink) cut the batches.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.cloud.log_sink import CLOUDWATCH, CloudWatchSink, Limits, LogSink, SinkError
from deploy.files import write_atomic

SETTINGS = Path("/etc/graticule/vm.json")
LOG_DIR = Path("/var/log/graticule")
STREAM_PREFIX = "hub/"
READ_AT_MOST = 4 * CLOUDWATCH.max_bytes  # per file and pass: memory stays bounded on a huge backlog


@dataclass(frozen=True)
class Line:
    message: str
    end: int  # the file offset just after its newline


@dataclass(frozen=True)
class Batch:
    messages: list[str]
    end: int  # where the file is shipped up to once this batch is in


def batches(lines: Sequence[Line], limits: Limits = CLOUDWATCH) -> Iterator[Batch]:
    """`lines` cut into batches within the sink's limits (PutLogEvents' by default), in order."""
    messages: list[str] = []
    size, end = 0, None
    for line in lines:
        message = limits.fit(line.message)
        if messages and (len(messages) == limits.max_events or size + limits.size(message) > limits.max_bytes):
            yield Batch(messages, end)
            messages, size = [], 0
        messages.append(message)
        size += limits.size(message)
        end = line.end
    if messages:
        yield Batch(messages, end)


def complete_lines(chunk: bytes, start: int) -> tuple[list[Line], int]:
    """The complete lines of `chunk` (read at offset `start`) and the offset after the last
    one; blank lines move the offset but are not shipped."""
    lines, offset = [], start
    for raw in chunk.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break
        offset += len(raw)
        text = raw.rstrip(b"\r\n").decode(errors="replace")
        if text.strip():
            lines.append(Line(text, offset))
    return lines, offset


class Offsets:
    """{file name: {"inode": ..., "offset": ...}}, kept in `path`, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.files: dict[str, dict[str, int]] = json.loads(path.read_text())
        except FileNotFoundError:
            self.files = {}
        except ValueError:
            print(f"logship: {path} is not JSON; shipping every log from its start", file=sys.stderr)
            self.files = {}

    def where(self, name: str, inode: int, size: int) -> int:
        entry = self.files.get(name)
        if entry is None or entry["inode"] != inode or entry["offset"] > size:
            return 0  # new, replaced or truncated: from the start
        return entry["offset"]

    def advance(self, name: str, inode: int, offset: int) -> None:
        self.files[name] = {"inode": inode, "offset": offset}
        write_atomic(self.path, json.dumps(self.files, sort_keys=True) + "\n", mode=0o600)


class Shipper:
    def __init__(self, log_dir: Path, offsets: Offsets, sink: LogSink, clock=time.time) -> None:
        self.log_dir, self.offsets, self.sink, self.clock = log_dir, offsets, sink, clock

    def ship_once(self) -> int:
        """One pass over every log file; returns how many lines went out."""
        shipped = 0
        for path in sorted(self.log_dir.glob("*.log")):
            try:
                shipped += self._ship(path)
            except SinkError as exc:  # kept for the next pass; the others still go
                print(f"logship: {exc}", file=sys.stderr)
            except OSError as exc:
                print(f"logship: cannot read {path}: {exc}", file=sys.stderr)
        return shipped

    def _ship(self, path: Path) -> int:
        with open(path, "rb") as handle:
            status = os.fstat(handle.fileno())
            start = self.offsets.where(path.name, status.st_ino, status.st_size)
            if start == status.st_size:
                return 0
            handle.seek(start)
            chunk = handle.read(READ_AT_MOST)
        lines, end = complete_lines(chunk, start)
        if end == start and len(chunk) == READ_AT_MOST:  # a line longer than a read: it goes, cut
            lines, end = [Line(chunk.decode(errors="replace"), start + len(chunk))], start + len(chunk)
        stamp = int(self.clock() * 1000)
        for batch in batches(lines, self.sink.limits):
            rejected = self.sink.put(STREAM_PREFIX + path.stem, [(stamp, message) for message in batch.messages])
            if rejected:  # the clock is far off: retrying would not help
                print(f"logship: {self.sink.name} rejected events of {path.name}: {rejected}", file=sys.stderr)
            self.offsets.advance(path.name, status.st_ino, batch.end)
        if end != self.offsets.where(path.name, status.st_ino, status.st_size):
            self.offsets.advance(path.name, status.st_ino, end)  # trailing blank lines
        return len(lines)


def _settings(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise SystemExit(f"logship: {path} is not JSON: {exc}") from None


def _sink(settings: dict, group: str, region: str | None) -> LogSink:
    if settings.get("cloud") != "gcp":
        return CloudWatchSink(group, region or settings.get("region"))
    from deploy.cloud.gcp_log_sink import CloudLoggingSink, instance_resource

    try:
        resource, name = instance_resource()
    except OSError as exc:  # systemd starts it again
        raise SystemExit(f"logship: cannot read the instance from its metadata server: {exc}") from None
    return CloudLoggingSink(settings["project"], group, resource, name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.vm.logship", description=__doc__.splitlines()[0])
    parser.add_argument("--settings", type=Path, default=SETTINGS, help=f"the VM's settings (default {SETTINGS})")
    parser.add_argument("--log-dir", type=Path, default=LOG_DIR, help=f"where the logs are (default {LOG_DIR})")
    parser.add_argument("--state-file", type=Path, help="offsets file (default STATE_DIR/logship/offsets.json)")
    parser.add_argument("--log-group", help="CloudWatch log group, or on gcp the logs' name prefix "
                                            "(default: log_group of the settings)")
    parser.add_argument("--region", help="AWS region (default: region of the settings)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between passes")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)

    settings = _settings(args.settings)
    group = args.log_group or settings.get("log_group")
    if not group:
        parser.error(f"no log group: give --log-group or log_group in {args.settings}")
    state_file = args.state_file or Path(settings.get("state_dir", "/var/lib/graticule")) / "logship" / "offsets.json"
    shipper = Shipper(args.log_dir, Offsets(state_file), _sink(settings, group, args.region))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # systemd's stop: finish the batch, exit
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while True:
        shipper.ship_once()
        if args.once or stop.wait(args.interval):
            return 0


if __name__ == "__main__":
    sys.exit(main())
