"""What the operator's `platform status`, `logs` and `token` ask GCP, with the operator's
own credentials (Application Default Credentials; a test's stand-ins through
deploy.cloud.google_clients): the hub instance's state (Compute Engine), a log's entries
(Cloud Logging) and a secret's value (Secret Manager). The clients are imported when
first used (the `[gcp]` extra).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from itertools import islice

from deploy.cloud.gcp_log_sink import logging_client
from deploy.cloud.google_clients import client_arguments
from deploy.cloud.operator import InstanceState
from deploy.errors import RuntimeFailure, UserError

MAX_LINES = 10_000  # `--lines 0` (all): as many as the aws target prints
PAGE = 1_000  # entries.list's largest page

# Compute Engine's instance statuses, as `platform status` words them (running = up).
_STATES = {"RUNNING": "running", "PROVISIONING": "pending", "STAGING": "pending", "STOPPING": "stopping",
           "SUSPENDING": "stopping", "SUSPENDED": "stopped", "TERMINATED": "stopped", "REPAIRING": "pending"}


def _last(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


class GcpOperator:
    def __init__(self, project: str, zone: str) -> None:
        self.project, self.zone = project, _last(zone)

    def instance(self, name: str) -> InstanceState | None:
        """The instance, or None when Compute Engine does not know it (any more)."""
        from google.api_core.exceptions import GoogleAPIError, NotFound
        from google.cloud import compute_v1

        client = compute_v1.InstancesClient(transport="rest", **client_arguments("compute"))
        try:
            raw = client.get(project=self.project, zone=self.zone, instance=name)
        except NotFound:
            return None
        except GoogleAPIError as exc:
            raise RuntimeFailure(f"gcp compute instances.get {name} failed: {exc}") from None
        address = raw.network_interfaces[0].network_i_p if raw.network_interfaces else None
        return InstanceState(raw.name, _STATES.get(raw.status, raw.status.lower()), address or None)

    def secret(self, name: str) -> str | None:
        """The secret's latest value, or None when it does not exist or has no version yet."""
        from google.api_core.exceptions import FailedPrecondition, GoogleAPIError, NotFound
        from google.cloud import secretmanager

        client = secretmanager.SecretManagerServiceClient(transport="rest", **client_arguments("secretmanager"))
        try:
            return client.access_secret_version(name=f"{name}/versions/latest").payload.data.decode()
        except (NotFound, FailedPrecondition):
            return None
        except GoogleAPIError as exc:
            raise RuntimeFailure(f"gcp secretmanager access {name} failed: {exc}") from None

    def log_entries(self, source: str, log_name: str, *, last: int, follow: bool = False,
                    wait: Callable[[], None] = lambda: time.sleep(1.0)) -> Iterator[str]:
        """The log's last `last` messages in `source` (a log bucket's view, or the project),
        oldest first; with `follow`, then each new one as it arrives (`wait()` between
        polls), until the caller stops iterating."""
        from google.api_core.exceptions import GoogleAPIError, NotFound

        api = logging_client(self.project).logging_api
        wanted = min(last, MAX_LINES) if last > 0 else MAX_LINES
        only_log = f'logName="{log_name}"'
        try:
            newest = list(islice(api.list_entries([source], filter_=only_log, order_by="timestamp desc",
                                                  page_size=min(wanted, PAGE)), wanted))
        except NotFound:
            raise UserError(f"no log view {source}: run `platform apply` (it makes the platform's log bucket)") \
                from None
        except GoogleAPIError as exc:
            raise RuntimeFailure(f"gcp logging entries.list in {source} failed: {exc}") from None
        if not newest:
            raise UserError(f"no entries in the log {log_name} ({source}): nothing was shipped for it (is the "
                            f"component's name right? is the hub VM up?)")
        yield from (_text(entry) for entry in reversed(newest))
        # entries.list orders by (timestamp, insertId) and the shipper's insertIds grow: what
        # follows the last entry printed is new.
        last_seen = (newest[0].timestamp, newest[0].insert_id)
        while follow:
            stamp = last_seen[0].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            try:
                fresh = [e for e in api.list_entries([source], filter_=f'{only_log} AND timestamp>="{stamp}"',
                                                     order_by="timestamp asc", page_size=PAGE)
                         if (e.timestamp, e.insert_id) > last_seen]
            except GoogleAPIError as exc:
                raise RuntimeFailure(f"gcp logging entries.list in {source} failed: {exc}") from None
            yield from (_text(entry) for entry in fresh)
            if fresh:
                last_seen = (fresh[-1].timestamp, fresh[-1].insert_id)
            else:
                wait()


def _text(entry) -> str:
    """A text entry's message (the shipper writes text); any other payload as its JSON."""
    payload = entry.payload
    return payload if isinstance(payload, str) else str(payload)
