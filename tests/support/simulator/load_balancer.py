"""Load balancers as local listeners doing what moto's listeners say.

Each load balancer gets a namespace on the VPC bridge with an address in its first
subnet, so target security groups that admit "the load balancer's group" see it as the
source. Each listener listens on the host's 127.0.0.1 (a free port: the host plays the
internet) and carries out its default action: `forward` relays the connection, from the
load balancer's namespace, to a registered target (round robin); `redirect` answers with
the redirect. Listener kinds: an ALB's HTTP/HTTPS listener and an NLB's TCP listener both
relay the connection's bytes untouched, so a TLS handshake through a TCP listener reaches
the target as it would through an NLB (tests/test_simulator_front_door.py). TLS is not
terminated (an HTTPS listener speaks plain HTTP here; NLB TLS listeners are not modelled),
listener rules other than the default action and health checks are not modelled.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.support.http_server import BurstHTTPServer
from tests.support.procs import free_port

from . import netns
from .forwarder import Forwarder


@dataclass
class LoadBalancer:
    name: str
    ns: str
    ip: str
    group_ids: tuple[str, ...]
    ports: dict[int, int] = field(default_factory=dict)  # listener port -> host port on 127.0.0.1
    servers: list = field(default_factory=list)


def _redirect_server(port: int, config: dict) -> BurstHTTPServer:
    status = int(config.get("StatusCode", "HTTP_301").removeprefix("HTTP_"))

    class Redirect(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            path, _, query = self.path.partition("?")
            host = (self.headers.get("Host") or "").split(":")[0]
            values = {"#{protocol}": "http", "#{host}": host, "#{path}": path.lstrip("/"), "#{query}": query,
                      "#{port}": str(port)}

            def fill(template: str) -> str:
                for key, value in values.items():
                    template = template.replace(key, value)
                return template

            scheme = fill(config.get("Protocol", "#{protocol}")).lower()
            location = (f"{scheme}://{fill(config.get('Host', '#{host}'))}:{fill(config.get('Port', '#{port}'))}"
                        f"{fill(config.get('Path', '/#{path}'))}")
            query_part = fill(config.get("Query", "#{query}"))
            self.send_response(status)
            self.send_header("Location", location + (f"?{query_part}" if query_part else ""))
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

        def log_message(self, *args) -> None:
            pass

    server = BurstHTTPServer(("127.0.0.1", free_port()), Redirect)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="sim-lb-redirect").start()
    return server


class LoadBalancers:
    def __init__(self, moto, vpc: netns.Vpc, prefix: str, address_of: Callable[[str], str | None]) -> None:
        self.elb = moto.client("elbv2")
        self.ec2 = moto.client("ec2")
        self.vpc = vpc
        self.prefix = prefix
        self.address_of = address_of  # instance id -> private IP of its running sandbox
        self.balancers: dict[str, LoadBalancer] = {}
        self._numbers = itertools.count()
        self._turn = itertools.count()

    def memberships(self) -> dict[str, list[str]]:
        """Security group -> load balancer addresses, for the instances' ingress rules."""
        members: dict[str, list[str]] = {}
        for balancer in self.balancers.values():
            for group in balancer.group_ids:
                members.setdefault(group, []).append(balancer.ip)
        return members

    def sync(self, taken: set[str]) -> None:
        for raw in self.elb.describe_load_balancers().get("LoadBalancers", []):
            balancer = self.balancers.get(raw["LoadBalancerArn"]) or self._create(raw, taken)
            for listener in self.elb.describe_listeners(LoadBalancerArn=raw["LoadBalancerArn"])["Listeners"]:
                if listener["Port"] not in balancer.ports:
                    self._listen(balancer, listener)

    def _create(self, raw: dict, taken: set[str]) -> LoadBalancer:
        subnet_id = raw["AvailabilityZones"][0]["SubnetId"]
        cidr = self.ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["CidrBlock"]
        network = ipaddress.ip_network(cidr)
        used = taken | {b.ip for b in self.balancers.values()}
        # From the top of the subnet (moto hands instances addresses from the bottom).
        ip = next(str(a) for a in (network.broadcast_address - n for n in range(2, 200)) if str(a) not in used)
        number = next(self._numbers)
        balancer = LoadBalancer(raw["LoadBalancerName"], f"{self.prefix}-lb{number}", ip,
                                tuple(raw.get("SecurityGroups", [])))
        self.balancers[raw["LoadBalancerArn"]] = balancer
        netns.add_ns(balancer.ns)
        self.vpc.attach(balancer.ns, f"simlb{number}", ip, cidr)
        return balancer

    def _listen(self, balancer: LoadBalancer, listener: dict) -> None:
        action = listener["DefaultActions"][0]
        if action["Type"] == "redirect":
            server = _redirect_server(listener["Port"], action["RedirectConfig"])
            balancer.servers.append(server)
            balancer.ports[listener["Port"]] = server.server_address[1]
            return
        groups = action.get("ForwardConfig", {}).get("TargetGroups") or [{"TargetGroupArn": action["TargetGroupArn"]}]
        arn = groups[0]["TargetGroupArn"]
        port = free_port()
        listening = socket.create_server(("127.0.0.1", port))
        forwarder = Forwarder(listening, lambda: self._connect(balancer, arn)).start()
        balancer.servers.append(forwarder)
        balancer.ports[listener["Port"]] = port

    def _connect(self, balancer: LoadBalancer, target_group_arn: str) -> socket.socket:
        targets = []
        for description in self.elb.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]:
            target = description["Target"]
            address = target["Id"] if target["Id"][0].isdigit() else self.address_of(target["Id"])
            if address:
                targets.append((address, target["Port"]))
        if not targets:
            raise LookupError(f"{balancer.name}: no registered target is running")
        host, port = targets[next(self._turn) % len(targets)]
        return netns.connect_in_ns(balancer.ns, host, port, timeout=10)

    def url(self, name: str, listener_port: int) -> str | None:
        for balancer in self.balancers.values():
            if balancer.name == name and listener_port in balancer.ports:
                return f"http://127.0.0.1:{balancer.ports[listener_port]}"
        return None

    def close(self) -> None:
        for balancer in self.balancers.values():
            for server in balancer.servers:
                with contextlib.suppress(Exception):
                    if isinstance(server, Forwarder):
                        server.stop()
                    else:
                        server.shutdown()
                        server.server_close()
            netns.delete_ns(balancer.ns)
        self.balancers.clear()
