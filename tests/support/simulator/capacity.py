"""Capacity errors at the API boundary: a proxy in front of moto that refuses some launches.

    with CapacityProxy(moto_server) as proxy:
        proxy.refuse(zone="us-west-2a")                       # every type in that zone
        proxy.refuse(instance_type="p3.2xlarge", spot=True)   # spot only
        ec2 = boto3.client("ec2", endpoint_url=proxy.url, ...)

RunInstances matching a rule gets EC2's own `InsufficientInstanceCapacity` error (HTTP 500,
a server error, as EC2 sends it); an instant CreateFleet launches from its other options
and lists the refused ones in its errorSet (capacity_fleet.py); everything else is passed
to moto unchanged. The zone of a request comes from Placement.AvailabilityZone, else from
its SubnetId, else from its launch template's subnet or placement; the instance type likewise.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlparse

from tests.support.http_server import BurstHTTPServer
from tests.support.procs import free_port

from . import capacity_fleet


@dataclass(frozen=True)
class Refusal:
    zone: str | None = None
    instance_type: str | None = None
    spot: bool | None = None  # None: both; True: spot requests only; False: on-demand only

    def matches(self, zone: str | None, instance_type: str | None, spot: bool) -> bool:
        return ((self.zone is None or self.zone == zone)
                and (self.instance_type is None or self.instance_type == instance_type)
                and (self.spot is None or self.spot == spot))


def error_xml(instance_type: str | None, zone: str | None) -> bytes:
    message = (f"We currently do not have sufficient {instance_type} capacity in the Availability Zone you "
               f"requested ({zone}). Our system will be working on provisioning additional capacity. You can "
               "currently get capacity by not specifying an Availability Zone in your request or choosing a "
               "different Availability Zone.")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>InsufficientInstanceCapacity</Code><Message>{message}</Message>"
            f"</Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>").encode()


class CapacityProxy:
    def __init__(self, moto) -> None:
        self.moto = moto
        self.rules: list[Refusal] = []
        self.refused: list[tuple[str | None, str | None, bool]] = []  # (zone, type, spot) of each refusal
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = BurstHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="sim-capacity")

    def refuse(self, zone: str | None = None, instance_type: str | None = None, spot: bool | None = None) -> None:
        self.rules.append(Refusal(zone, instance_type, spot))

    def clear(self) -> None:
        self.rules.clear()

    def __enter__(self) -> CapacityProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # what a RunInstances asks for ------------------------------------------------------
    def _launch(self, form: dict[str, str]) -> tuple[str | None, str | None, bool]:
        zone = form.get("Placement.AvailabilityZone")
        subnet = form.get("SubnetId") or form.get("NetworkInterface.1.SubnetId")
        instance_type = form.get("InstanceType")
        spot = form.get("InstanceMarketOptions.MarketType") == "spot"
        template = form.get("LaunchTemplate.LaunchTemplateId") or form.get("LaunchTemplate.LaunchTemplateName")
        if template and (instance_type is None or (zone is None and subnet is None)):
            data = self._template_data(form)
            instance_type = instance_type or data.get("InstanceType")
            zone = zone or data.get("Placement", {}).get("AvailabilityZone")
            interfaces = data.get("NetworkInterfaces") or [{}]
            subnet = subnet or interfaces[0].get("SubnetId")
            spot = spot or data.get("InstanceMarketOptions", {}).get("MarketType") == "spot"
        if zone is None and subnet:
            ec2 = self.moto.client("ec2")
            zone = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailabilityZone"]
        return zone, instance_type, spot

    def _fleet_refusal(self, choice: capacity_fleet.FleetChoice, spot: bool) -> tuple[bool, str | None, str | None]:
        """Whether one option of an instant fleet is refused: (refused, its instance type, its zone)."""
        as_launch = {"InstanceType": choice.override.get("InstanceType"),
                     "Placement.AvailabilityZone": choice.override.get("AvailabilityZone"),
                     "SubnetId": choice.override.get("SubnetId"),
                     "LaunchTemplate.LaunchTemplateId": choice.template.get("LaunchTemplateId"),
                     "LaunchTemplate.LaunchTemplateName": choice.template.get("LaunchTemplateName"),
                     "LaunchTemplate.Version": choice.template.get("Version")}
        zone, instance_type, _ = self._launch({k: v for k, v in as_launch.items() if v})
        refused = any(rule.matches(zone, instance_type, spot) for rule in self.rules)
        if refused:
            self.refused.append((zone, instance_type, spot))
        return refused, instance_type, zone

    def _template_data(self, form: dict[str, str]) -> dict:
        ec2 = self.moto.client("ec2")
        selector = ({"LaunchTemplateId": form["LaunchTemplate.LaunchTemplateId"]}
                    if "LaunchTemplate.LaunchTemplateId" in form
                    else {"LaunchTemplateName": form["LaunchTemplate.LaunchTemplateName"]})
        version = form.get("LaunchTemplate.Version", "$Default")
        versions = ec2.describe_launch_template_versions(**selector, Versions=[version])["LaunchTemplateVersions"]
        return versions[0]["LaunchTemplateData"] if versions else {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self
        target = urlparse(self.moto.url)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self, body: bytes, amend: Callable[[bytes], bytes] = lambda payload: payload) -> None:
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                    headers["Host"] = target.netloc
                    connection.request(self.command, self.path, body=body or None, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                    if response.status == 200:
                        payload = amend(payload)
                finally:
                    connection.close()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
                if form.get("Action") == "RunInstances" and proxy.rules:
                    zone, instance_type, spot = proxy._launch(form)
                    if any(rule.matches(zone, instance_type, spot) for rule in proxy.rules):
                        proxy.refused.append((zone, instance_type, spot))
                        self._reply(500, error_xml(instance_type, zone))
                        return
                if form.get("Action") == "CreateFleet" and form.get("Type") == "instant" and proxy.rules:
                    request, errors = capacity_fleet.judge(form, proxy._fleet_refusal)
                    if request is None:
                        self._reply(200, capacity_fleet.errors_only(errors))
                        return
                    self._forward(urlencode(request).encode(), lambda reply: capacity_fleet.with_errors(reply, errors))
                    return
                self._forward(body)

            def _reply(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/xml;charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args) -> None:
                pass

        return Handler


@contextlib.contextmanager
def capacity_proxy(moto):
    with CapacityProxy(moto) as proxy:
        yield proxy
