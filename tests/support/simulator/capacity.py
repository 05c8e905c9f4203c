"""Capacity errors at the API boundary: an HTTP proxy in front of moto.

RunInstances for a configured availability zone, instance type or market ("spot",
"on-demand") is answered with EC2's own InsufficientInstanceCapacity error; every other
request goes to moto unchanged.

    with CapacityProxy(moto_server, zones={"us-west-2a"}, markets={"spot"}) as proxy:
        ec2 = boto3.client("ec2", endpoint_url=proxy.url, ...)

The zone comes from Placement.AvailabilityZone, else from the subnet; the instance type
from the request, else from the launch template's version (both asked of moto).
Not simulated: CreateFleet (its capacity errors come back inside a successful response).
"""

from __future__ import annotations

import http.client
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.moto_server import MotoServer

# EC2 returns this error with HTTP 500 (it is a server-side condition, retried by SDKs).
ERROR_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InsufficientInstanceCapacity</Code><Message>We currently do not have \
sufficient {instance_type} capacity in the Availability Zone you requested ({zone}). Our system will be \
working on provisioning additional capacity. You can currently get {instance_type} capacity by not \
specifying an Availability Zone in your request or choosing a different Availability Zone.</Message>\
</Error></Errors><RequestID>{request_id}</RequestID></Response>"""
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


@dataclass
class CapacityRules:
    zones: set[str] = field(default_factory=set)
    instance_types: set[str] = field(default_factory=set)
    markets: set[str] = field(default_factory=set)  # "spot" and/or "on-demand"
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (zone, type, market) of each refusal

    def exhausted(self, zone: str, instance_type: str, market: str) -> bool:
        return zone in self.zones or instance_type in self.instance_types or market in self.markets


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._forward(b"")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        params = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        if params.get("Action") == "RunInstances":
            zone = params.get("Placement.AvailabilityZone") or self.server.subnet_zone(
                params.get("SubnetId") or params.get("NetworkInterface.1.SubnetId"))
            instance_type = params.get("InstanceType") or self.server.template_instance_type(params) or "m1.small"
            market = "spot" if params.get("InstanceMarketOptions.MarketType") == "spot" else "on-demand"
            if self.server.rules.exhausted(zone or "", instance_type, market):
                self.server.rules.refused.append((zone or "", instance_type, market))
                return self._reply(500, ERROR_XML.format(instance_type=instance_type, zone=zone,
                                                         request_id=secrets.token_hex(16)).encode())
        self._forward(body)

    def _reply(self, status: int, body: bytes, headers: list[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _forward(self, body: bytes) -> None:
        connection = http.client.HTTPConnection(*self.server.upstream, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            self._reply(response.status, response.read(), response.getheaders())
        finally:
            connection.close()


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, moto: MotoServer, rules: CapacityRules):
        super().__init__(("127.0.0.1", 0), _Handler)
        parts = urlsplit(moto.url)
        self.upstream = (parts.hostname, parts.port)
        self.rules = rules
        self._ec2 = moto.client("ec2")

    def subnet_zone(self, subnet_id: str | None) -> str | None:
        if not subnet_id:
            return None
        return self._ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["AvailabilityZone"]

    def template_instance_type(self, params: dict[str, str]) -> str | None:
        template = {key: params[f"LaunchTemplate.{key}"] for key in ("LaunchTemplateId", "LaunchTemplateName")
                    if params.get(f"LaunchTemplate.{key}")}
        if not template:
            return None
        version = params.get("LaunchTemplate.Version", "$Default")
        found = self._ec2.describe_launch_template_versions(**template, Versions=[version])["LaunchTemplateVersions"]
        return found[0]["LaunchTemplateData"].get("InstanceType") if found else None


class CapacityProxy:
    def __init__(self, moto: MotoServer, zones: set[str] = frozenset(), instance_types: set[str] = frozenset(),
                 markets: set[str] = frozenset()):
        self.rules = CapacityRules(zones=set(zones), instance_types=set(instance_types), markets=set(markets))
        self._server = _ProxyServer(moto, self.rules)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="sim-capacity", daemon=True)

    def __enter__(self) -> CapacityProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
