"""A real moto server (every AWS service on one loopback endpoint) for tests.

Use the fixture (one server per test module):

    from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)

    def test_x(moto_server):
        s3 = moto_server.client("s3")

or the context manager `running_moto(env=...)` for a server of your own. The server is
stopped by PID, children included, even when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.procs import free_port, kill_tree, wait_for_http

REGION = "us-west-2"
ACCOUNT_ID = "123456789012"  # moto's default account
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# Server-side settings that make moto behave more like a real account: certificates
# requested from ACM are issued at once (instead of after moto's default 60 s), and AWS
# managed IAM policies (e.g. AmazonSSMManagedInstanceCore) exist and can be attached.
DEFAULT_ENV = {"MOTO_ACM_VALIDATION_WAIT": "0", "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}


@dataclass(frozen=True)
class MotoServer:
    url: str
    pid: int
    region: str = REGION
    account_id: str = ACCOUNT_ID

    def client(self, service: str, region: str | None = None):
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=region or self.region, **CREDENTIALS)

    def reset(self) -> None:
        """Forget every resource (moto's own reset API)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        # Generous: a reset re-creates the default VPCs and IAM's managed policies, which on
        # busy shared cores took over 10 s (every setup error of a 2-worker run at load 18).
        urllib.request.urlopen(request, timeout=120).close()

    def env(self) -> dict[str, str]:
        """Environment for AWS SDKs and CLIs talking to this server."""
        return {
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.url,
        }


def _command() -> list[str]:
    # moto's server with its terminated instances' addresses freed, as EC2 does (moto_main.py)
    return [sys.executable, str(Path(__file__).with_name("moto_main.py"))]


@contextlib.contextmanager
def running_moto(env: Mapping[str, str] | None = None, log: Path | None = None) -> Iterator[MotoServer]:
    port = free_port()
    environment = {**os.environ, **DEFAULT_ENV, **(env or {})}
    for key in ("AWS_ENDPOINT_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        environment.pop(key, None)
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(open(log, "ab")) if log else subprocess.DEVNULL
        proc = subprocess.Popen([*_command(), "-H", "127.0.0.1", "-p", str(port)], env=environment,
                                stdout=sink, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{url}/moto-api/", timeout=60, proc=proc)
            yield MotoServer(url=url, pid=proc.pid)
        finally:
            kill_tree(proc.pid)


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory) -> Iterator[MotoServer]:
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with running_moto(log=log) as server:
        yield server
