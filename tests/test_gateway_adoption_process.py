"""A real dask-gateway server with graticule's AWS backend, SIGKILLed in the middle of a
batch launch of workers and started again: nothing is launched twice (the workers adopt
the batch's instances), every cluster is adopted with the same open usage intervals, and
an instance nobody knows is terminated.

Real parts: the `dask-gateway-server` process with the rendered aws gateway config,
graticule's AWSBackend and machines layer, moto as EC2, the usage ledger and the gateway's
database on SQLite. Set by this test, not by the platform: dask-gateway's own
SimpleAuthenticator (the hub is not what is tested; the rendered config asks JupyterHub),
a 1 s metering interval, and a long start timeout (instances in moto never boot, so the
clusters stay starting). A relay in front of moto (tests/support/holding_proxy.py) holds
back the answer to one RunInstances (the workers' batch), so the kill lands between EC2's
launch and the gateway's record of it. After the kill, what the dead gateway left (dask-gateway's proxy
child) is stopped as systemd stops a unit's control group before restarting it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa
from dask_gateway.auth import BasicAuth

from deploy.ledger import Ledger
from deploy.ledger.models import UsageInterval
from tests.support import vm_gateway
from tests.support.gateway_client import Gateway
from tests.support.holding_proxy import holding_proxy
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.procs import free_port, kill_tree

REPO = Path(__file__).resolve().parent.parent
PASSWORD = secrets.token_hex(8)

TEST_CONFIG = """\
load_subconfig({rendered!r})
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = {password!r}
c.DBBackendBase.cluster_start_timeout = 1800.0
"""


def _until(check: Callable[[], object], timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class GatewayProcess:
    def __init__(self, root: Path, env: dict[str, str], url: str) -> None:
        self.root, self.env, self.url = root, env, url
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.root / "gateway.log", "ab") as log:
            self.proc = subprocess.Popen(
                ["dask-gateway-server", "-f", str(self.root / "test_gateway_config.py")],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        _until(self._healthy, 120, "the gateway to answer /api/health")

    def _healthy(self) -> bool:
        assert self.proc.poll() is None, f"the gateway exited: {self.log()}"
        try:  # 200 only once its proxy routes to the API (a 404 before)
            with urllib.request.urlopen(f"{self.url}/api/health", timeout=5) as answer:
                return answer.status == 200
        except OSError:
            return False

    def sigkill(self) -> None:
        """SIGKILL the gateway alone (a crash); then stop what it left, as systemd would."""
        left = psutil.Process(self.proc.pid).children(recursive=True)
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        for child in left:
            kill_tree(child.pid)

    def stop(self) -> None:
        if self.proc is not None:
            kill_tree(self.proc.pid)

    def log(self) -> str:
        return (self.root / "gateway.log").read_text(errors="replace")[-4000:]


def _workers(root: Path, cluster: str) -> list[str]:
    """Machine ids the gateway's database holds for the cluster's workers."""
    engine = sa.create_engine(f"sqlite:///{root / 'gateway' / 'gateway.sqlite'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT w.state FROM workers w JOIN clusters c ON w.cluster_id = c.id WHERE c.name = :name"
            ), {"name": cluster}).all()
    finally:
        engine.dispose()
    states = [json.loads(state or "null") or {} for (state,) in rows]
    return [state["machine_id"] for state in states if state.get("machine_id")]


def _intervals(root: Path) -> list[UsageInterval]:
    ledger = Ledger.open(url=f"sqlite:///{root / 'ledger.sqlite'}")
    try:
        with ledger.reading() as conn:
            return list(conn.execute(sa.select(UsageInterval).order_by(UsageInterval.id)))
    finally:
        ledger.close()


@pytest.fixture
def site(tmp_path, moto_server, example_text):  # noqa: F811
    moto_server.reset()
    files = vm_gateway.render_into(tmp_path, vm_gateway.aws_text(example_text))
    workers = {p: json.loads(d) for p, d in files.items() if p.startswith("workers/")}
    vm_gateway.prepare_moto(moto_server, workers, "oceanlab")
    (tmp_path / "test_gateway_config.py").write_text(TEST_CONFIG.format(
        rendered=str(tmp_path / "build" / "gateway" / "dask_gateway_config.py"), password=PASSWORD))
    with holding_proxy(moto_server.url) as relay:
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GRATICULE_", "AWS_", "DASK_GATEWAY"))},
            **moto_server.env(),
            "AWS_ENDPOINT_URL": relay.url,
            "PYTHONPATH": str(REPO),
            "GRATICULE_STATE_DIR": str(tmp_path),
            "GRATICULE_GATEWAY_URL": f"http://127.0.0.1:{port}",
            "GRATICULE_HUB_API_URL": "http://127.0.0.1:9/hub/api",  # never asked: SimpleAuthenticator
            "GRATICULE_GATEWAY_API_TOKEN": secrets.token_hex(16),
            "GRATICULE_METER_INTERVAL": "1",
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        gateway = GatewayProcess(tmp_path, env, f"http://127.0.0.1:{port}/services/dask-gateway")
        try:
            yield gateway, relay, moto_server
        finally:
            gateway.stop()


def test_a_gateway_killed_mid_launch_adopts_its_clusters_after_a_restart(site):
    gateway, relay, aws = site
    ec2 = aws.client("ec2")

    def instances(**tags) -> list[dict]:
        filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
        answer = ec2.describe_instances(Filters=filters)
        return [i for r in answer["Reservations"] for i in r["Instances"]
                if i["State"]["Name"] in ("pending", "running")]

    gateway.start()
    client = Gateway(address=gateway.url, auth=BasicAuth("alice", PASSWORD))
    try:
        running = client.submit(profile="small")
        (scheduler,) = _until(lambda: instances(cluster=running), 120, "the first cluster's scheduler instance")
        first = _until(lambda: [r for r in _intervals(gateway.root) if r.cluster == running and r.machine_id],
                       60, "the scheduler's interval to know its instance")
        assert first[0].machine_id == scheduler["InstanceId"]

        # The next cluster's two initial workers are one launch request: it happens, and its
        # answer never reaches the gateway.
        relay.hold("RunInstances", containing="MinCount=2")
        starting = client.submit(profile="small", workers=2)
        assert relay.held.wait(120), gateway.log()
        gateway.sigkill()
        relay.release()
        in_flight = {i["InstanceId"] for i in instances(cluster=starting, role="worker")}
        assert len(in_flight) == 2
        assert not _workers(gateway.root, starting)  # the gateway died before recording them
        ghost = ec2.run_instances(
            ImageId=ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"], MinCount=1, MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": "platform", "Value": "oceanlab"}, {"Key": "role", "Value": "worker"},
                {"Key": "cluster", "Value": "forgotten"}, {"Key": "budget", "Value": "ocean"}]}],
        )["Instances"][0]["InstanceId"]
    finally:
        client.close()

    before = {(r.cluster, r.process): r.id for r in _intervals(gateway.root)}
    assert len(before) == 4  # two schedulers and the two workers, admitted before their launch

    gateway.start()  # the unit's Restart=always
    adopted = _until(lambda: _workers(gateway.root, starting) if len(_workers(gateway.root, starting)) == 2
                     else None, 120, "the workers to be recorded again")
    assert set(adopted) == in_flight  # the launched batch adopted, not launched again
    assert len(instances(cluster=starting)) == 3 and len(instances(cluster=running)) == 1
    _until(lambda: not instances(cluster="forgotten"), 60, f"the unknown instance {ghost} to be terminated")
    rows = _until(lambda: [r for r in _intervals(gateway.root) if r.machine_id and r.ended_at is None]
                  if len([r for r in _intervals(gateway.root) if r.machine_id]) == 4 else None,
                  60, "every interval to know its instance")
    assert {(r.cluster, r.process): r.id for r in rows} == before  # the same intervals go on, none new
    assert {r.machine_id for r in rows if r.cluster == starting and r.process != starting} == in_flight
    assert {r.id for r in rows if r.cluster == running} == {first[0].id}
    assert len(_intervals(gateway.root)) == 4

    client = Gateway(address=gateway.url, auth=BasicAuth("alice", PASSWORD))
    try:
        for name in (running, starting):
            client.stop_cluster(name)
    finally:
        client.close()
    _until(lambda: not instances(cluster=running) and not instances(cluster=starting), 120, "the instances to go")
    _until(lambda: all(r.ended_at is not None for r in _intervals(gateway.root)), 60, "the intervals to close")
