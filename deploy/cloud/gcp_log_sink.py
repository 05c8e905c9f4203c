"""Cloud Logging as the hub VM's log sink on GCP: what `deploy.vm.logship` puts its lines
into there, and the names `platform logs` reads them by (deploy.cloud.operator_gcp).

One log per component: `projects/P/logs/graticule-<platform>%2Fhub%2F<component>` (the log
id `<log_group of vm.json>/hub/<component>`, URL-encoded as the API wants). The log name is
the field Cloud Logging indexes first, so `platform logs gateway` is an exact `logName=`
filter that never scans the other components' entries, each component shows as its own
log in the Logs Explorer, and the platform's name in it keeps two platforms of one
project apart. Each entry's resource is the hub instance (`gce_instance`: instance_id,
zone, project_id, from the metadata server) and it carries the label
`compute.googleapis.com/resource_name` = the instance's name, which is what the platform's
rendered log sink (modules/gcp/logs.py) matches to route the VM's logs into the platform's
log bucket, kept `integrations.logs.retention_days`; `platform logs` reads that bucket.

Entries go through google-cloud-logging's JSON-over-HTTP API (`Client(_use_grpc=False)`:
entries.write, entries.list), not gRPC: the REST path is the one Private Google Access
and the tests' stand-in serve alike; the library adds three small wheels to the hub's
wheelhouse (grpcio and google-api-core are there already for Compute and Secret Manager).

Cloud Logging's limits ("Quotas and limits", https://cloud.google.com/logging/quotas): a
LogEntry at most 256 KiB (approximate, counted on internal sizes, the entry's name,
resource and labels included), an entries.write request at most 10 MB, at most 64 labels
per entry, timestamps more than a day ahead refused with INVALID_ARGUMENT (older than the
bucket's retention: accepted, not stored). Here: a message is cut to 250,000 bytes
(room for the rest of the entry); a batch holds at most 1,000 entries (what Google's own
client libraries bundle, e.g. the Go client's EntryCountThreshold) and 1 MiB of UTF-8
text: the JSON escaping of a control character takes up to 6 bytes per byte, so a batch
stays under the 10 MB request limit whatever the text. Equal timestamps sort by insertId
(entries.list), so each entry gets one that sorts in shipping order.
"""

from __future__ import annotations

import itertools
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from deploy.cloud.google_clients import client_arguments
from deploy.cloud.log_sink import Limits, SinkError
from modules.gcp.startup_script import METADATA  # the metadata server, without DNS

ENTRY_OVERHEAD = 120  # the JSON of an entry's timestamp, insertId and field names
LIMITS = Limits(max_events=1_000, max_bytes=1_048_576, overhead=ENTRY_OVERHEAD, max_message_bytes=250_000)
RESOURCE_NAME_LABEL = "compute.googleapis.com/resource_name"  # what the rendered sink's filter matches


def log_id(prefix: str, stream: str) -> str:
    """`graticule-lab` + `hub/gateway` -> `graticule-lab/hub/gateway`."""
    return f"{prefix}/{stream}"


def log_name(project: str, prefix: str, stream: str) -> str:
    return f"projects/{project}/logs/{quote(log_id(prefix, stream), safe='')}"


def rfc3339(milliseconds: int) -> str:
    return datetime.fromtimestamp(milliseconds / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def logging_client(project: str, *, on_vm: bool = False):
    """google-cloud-logging's client over HTTP (imported when first used: the `[gcp]` extra)."""
    from google.cloud import logging_v2

    arguments = client_arguments("logging", on_vm=on_vm)
    return logging_v2.Client(project=project, _use_grpc=False, credentials=arguments["credentials"],
                             client_options=arguments["client_options"])


def instance_resource(timeout: float = 10.0) -> tuple[dict, str]:
    """The `gce_instance` monitored resource of the machine this runs on and its name, from
    its metadata server; raises OSError off GCE."""

    def read(path: str) -> str:
        request = urllib.request.Request(f"{METADATA}/{path}", headers={"Metadata-Flavor": "Google"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.read().decode().strip()

    zone = read("instance/zone").rsplit("/", 1)[-1]
    resource = {"type": "gce_instance",
                "labels": {"instance_id": read("instance/id"), "zone": zone,
                           "project_id": read("project/project-id")}}
    return resource, read("instance/name")


class CloudLoggingSink:
    name = "Cloud Logging"
    limits = LIMITS

    def __init__(self, project: str, prefix: str, resource: dict, instance_name: str, *, client=None,
                 on_vm: bool = True) -> None:
        self.project, self.prefix, self.resource = project, prefix, resource
        self.labels = {RESOURCE_NAME_LABEL: instance_name}
        self._client, self._on_vm = client, on_vm
        self._sequence = itertools.count()

    @property
    def client(self):
        if self._client is None:
            self._client = logging_client(self.project, on_vm=self._on_vm)
        return self._client

    def put(self, stream: str, events: Sequence[tuple[int, str]]) -> dict:
        """Write `(timestamp ms, message)` events to the stream's log in one entries.write.
        Returns what Cloud Logging refused for good (a 400: timestamps over a day ahead,
        which no retry changes; with partialSuccess the other entries are in); raises
        SinkError when it was refused otherwise or not reached."""
        from google.api_core.exceptions import BadRequest, GoogleAPIError
        from google.auth.exceptions import GoogleAuthError

        entries = [{"timestamp": rfc3339(stamp), "insertId": f"{stamp:013d}-{next(self._sequence):010d}",
                    "textPayload": message} for stamp, message in events]
        name = log_name(self.project, self.prefix, stream)
        try:
            self.client.logging_api.write_entries(entries, logger_name=name, resource=self.resource,
                                                  labels=self.labels, partial_success=True)
        except BadRequest as exc:
            return {"invalid": exc.message}
        except (GoogleAPIError, GoogleAuthError, OSError) as exc:  # requests' errors are OSErrors
            raise SinkError(f"entries.write to {name} failed: {exc}") from None
        return {}
