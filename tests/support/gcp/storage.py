"""Cloud Storage for tests: gcp-storage-emulator (PyPI), a REAL emulator of the GCS JSON
API (buckets, objects insert/get/list/delete, media and multipart uploads, downloads),
in memory, in a thread of the test process on 127.0.0.1.

    with running_gcs() as gcs:          # gcs.url: http://127.0.0.1:PORT
        client = gcs.client()           # google-cloud-storage, anonymous, against the emulator
        curl http://127.0.0.1:PORT/storage/v1/b/BUCKET/o/NAME?alt=media

google-cloud-storage finds it through `STORAGE_EMULATOR_HOST` (what `gcs.environment()`
gives); inside a simulated instance it is the `storage` URL of
/etc/graticule/google-endpoints.json. The emulator checks no credentials;
`running_gcs(create_only=CreateOnly(("environments/",)))` answers uploads as Cloud Storage
answers a caller that may create objects there but not replace them
(tests/support/gcp/storage_creator.py).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from gcp_storage_emulator.server import create_server

from tests.support.gcp.storage_creator import CreateOnly, CreateOnlyServer


@dataclass
class RunningGcs:
    url: str
    project: str
    server: object

    def environment(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.url}

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project=self.project, credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.url})

    def wipe(self) -> None:
        self.server.wipe()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_gcs(project: str = "oceanlab-prod", create_only: CreateOnly | None = None) -> Iterator[RunningGcs]:
    # The emulator's HTTPServer cannot report a port it picked itself, so one is chosen here;
    # a race with another process taking it in between fails loudly (address in use).
    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True) if create_only is None \
        else CreateOnlyServer("127.0.0.1", port, create_only)
    server.start()
    try:
        yield RunningGcs(f"http://127.0.0.1:{port}", project, server)
    finally:
        server.stop()
