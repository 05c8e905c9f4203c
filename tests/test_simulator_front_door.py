"""The rendered front door in the machine simulator.

The example platform is rendered for aws; its security groups, ingress rules, load
balancers, target groups and listeners are created in moto from that JSON
(tests/support/simulator/rendered.py), in front of instances booted by the simulator:
- through the network load balancer's TCP 8786, a TLS client completes its handshake with
  a TLS server inside the hub instance (the bytes pass untouched: the server sees the
  client's SNI and the client verifies the server's own certificate);
- the application load balancer's port 80 answers with the rendered 301 to HTTPS, and its
  443 listener reaches the hub's HUB_PORT;
- what the groups do not open is refused: from the load balancers' address, the hub's
  Dask dashboard port 8787 and a worker's scheduler port 8786 (the worker admits the hub,
  which does reach it), and a worker cannot reach the hub's scheduler proxy port.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from render.terraform import synthesize_target
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.simulator import Simulator, simulator_unavailable
from tests.support.simulator.netns import connect_in_ns
from tests.support.simulator.probes import connect, launch, wait_listening
from tests.support.simulator.rendered import RenderedFrontDoor
from tests.support.terraform import example_platform

pytestmark = [pytest.mark.slow, pytest.mark.skipif(simulator_unavailable() is not None,
                                                   reason=simulator_unavailable() or "")]
SNI = "dask-0123abcd.example.org"

# Inside the hub: the proxy's port (HTTP), the scheduler proxy's port (TLS, says the SNI it
# was asked for), and a Dask dashboard port that only the VPC's own machines may reach.
HUB = """#!/bin/sh
mkdir -p /srv/www /srv/tls && echo "hub $(hostname)" > /srv/www/health
cat > /srv/tls/cert.pem <<'PEM'
{cert}PEM
cat > /srv/tls/key.pem <<'PEM'
{key}PEM
cat > /srv/tls/serve.py <<'PY'
import socket, ssl, threading
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("/srv/tls/cert.pem", "/srv/tls/key.pem")
context.sni_callback = lambda connection, name, _: setattr(connection, "sni", name)
def answer(raw):
    with context.wrap_socket(raw, server_side=True) as tls:
        tls.sendall(("sni=%s " % getattr(tls, "sni", None)).encode() + tls.recv(100))
server = socket.create_server(("0.0.0.0", 8786))
while True:
    raw, _ = server.accept()
    threading.Thread(target=answer, args=(raw,), daemon=True).start()
PY
cd /srv/www && nohup python3 -m http.server 8000 >/var/log/hub.log 2>&1 &
nohup python3 -m http.server 8787 >/var/log/dashboard.log 2>&1 &
nohup python3 /srv/tls/serve.py >/var/log/tls.log 2>&1 &
"""
WORKER = """#!/bin/sh
nohup python3 -m http.server 8786 >/var/log/scheduler.log 2>&1 &
"""


def self_signed(directory: Path) -> tuple[str, str]:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={SNI}",
                    "-addext", f"subjectAltName=DNS:{SNI}", "-keyout", str(directory / "key.pem"),
                    "-out", str(directory / "cert.pem")], check=True, capture_output=True)
    return (directory / "cert.pem").read_text(), (directory / "key.pem").read_text()


def from_namespace(ns: str, host: str, port: int) -> str:
    """How a TCP connection made inside namespace `ns` to host:port ends."""
    try:
        connect_in_ns(ns, host, port, timeout=3).close()
        return "open"
    except TimeoutError:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"


def test_the_rendered_front_door_in_the_simulator(moto_server, tmp_path):  # noqa: F811
    moto_server.reset()
    ec2 = moto_server.client("ec2")
    subnets = {s["AvailabilityZone"]: s for s in ec2.describe_subnets()["Subnets"]}
    vpc = subnets["us-west-2a"]["VpcId"]
    certificate = moto_server.client("acm").request_certificate(DomainName="hub.oceanlab.org")["CertificateArn"]
    (payload,) = synthesize_target(example_platform("aws"), "aws").values()
    stack = json.loads(payload)
    cert, key = self_signed(tmp_path)

    with Simulator(moto_server, tmp_path / "sim") as sim:
        door = RenderedFrontDoor(moto_server, stack, {
            "${aws_vpc.main.id}": vpc,
            "${aws_subnet.public_0.id}": subnets["us-west-2a"]["SubnetId"],
            "${aws_subnet.public_1.id}": subnets["us-west-2b"]["SubnetId"],
            "${aws_acm_certificate_validation.hub.certificate_arn}": certificate,
        })
        groups = door.security_groups()
        hub = launch(ec2, subnets["us-west-2b"]["SubnetId"], HUB.format(cert=cert, key=key), [groups["hub"]])
        worker = launch(ec2, subnets["us-west-2b"]["SubnetId"], WORKER, [groups["workers"]])
        door.values["${aws_instance.hub.id}"] = hub
        door.load_balancers()
        hub_box, worker_box = sim.wait_running(hub), sim.wait_running(worker)
        for port in (8000, 8786, 8787):
            wait_listening(hub_box, port)
        wait_listening(worker_box, 8786)

        # Dask's TLS through the NLB, end to end: our CA, our SNI, the instance's answer.
        scheduler = urlparse(sim.wait_load_balancer("oceanlab-dask", 8786))
        context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))

        def exchange() -> tuple[object, bytes]:
            raw = socket.create_connection((scheduler.hostname, scheduler.port), timeout=10)
            with raw, context.wrap_socket(raw, server_hostname=SNI) as tls:
                tls.sendall(b"hello")
                return tls.getpeercert()["subject"], _read_all(tls)

        subject, reply = _when_routed(exchange)
        assert subject == ((("commonName", SNI),),)
        assert reply == f"sni={SNI} hello".encode()

        # HTTP is answered with the rendered redirect; 443 (plain HTTP here) reaches the hub.
        plain = urlparse(sim.wait_load_balancer("oceanlab-hub", 80))
        connection = http.client.HTTPConnection(plain.hostname, plain.port, timeout=10)
        connection.request("GET", "/hub/login?next=%2F", headers={"Host": "hub.oceanlab.org"})
        reply = connection.getresponse()
        assert (reply.status, reply.getheader("Location")) == (301, "https://hub.oceanlab.org:443/hub/login?next=%2F")
        connection.close()
        front = sim.wait_load_balancer("oceanlab-hub", 443)
        body = _when_routed(lambda: urllib.request.urlopen(front + "/health", timeout=10).read().decode())
        assert body == f"hub ip-{hub_box.ip.replace('.', '-')}\n"

        # What the groups do not open is dropped, from the load balancers' own address.
        balancer_ns = next(b.ns for b in sim.load_balancers.balancers.values() if b.name == "oceanlab-dask")
        assert from_namespace(balancer_ns, hub_box.ip, 8786) == "open"
        assert from_namespace(balancer_ns, hub_box.ip, 8787) == "timeout"  # the Dask dashboard port
        assert from_namespace(balancer_ns, worker_box.ip, 8786) == "timeout"  # a scheduler, from outside
        assert connect(hub_box, worker_box.ip, 8786) == "open"  # ... which the hub reaches
        assert connect(worker_box, hub_box.ip, 8786) == "timeout"  # the scheduler proxy: the LB only
        assert connect(worker_box, hub_box.ip, 8000) == "open"  # the hub API, from notebooks and schedulers


def _when_routed(attempt, timeout: float = 60.0):
    """`attempt()`'s result once it succeeds: the simulator's watcher puts the listeners,
    targets and the hub's filter in place a moment after moto holds them."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except OSError:  # refused, reset, or a handshake cut short (ssl.SSLError is one)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _read_all(tls: ssl.SSLSocket) -> bytes:
    chunks = []
    while chunk := tls.recv(1024):
        chunks.append(chunk)
    return b"".join(chunks)
