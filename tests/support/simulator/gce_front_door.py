"""The rendered stack's global load balancer, in front of the GCE simulator's instances.

Nothing applies the GCP stack offline and the fake Compute API holds no load balancers,
so this reads them from `main.tf.json`: each `google_compute_global_forwarding_rule`'s
port, through its target proxy (HTTPS/HTTP: the URL map's default service; TCP/SSL: the
backend service), to the backend service's instance groups, their instances (by name) and
the named port the service's `port_name` picks. Each forwarding rule listens on the host's
127.0.0.1 (a port of its own: the host plays the internet) and relays each connection to a
booted instance of those groups (round robin; a replaced hub with the same name is found
again), from a namespace at 35.191.0.2, in the range Google's front ends and health
checks come from, so the rendered firewall's "load balancer to hub" rule is what admits
it. As in the AWS simulator: TLS is not terminated (the HTTPS rule speaks plain HTTP
here); URL map rules other than the default service and health checks are not modelled.
"""

from __future__ import annotations

import itertools
import re
import socket
from dataclasses import dataclass

from . import netns
from .forwarder import Forwarder

GOOGLE_FRONT_END = ("35.191.0.2", "35.191.0.0/16")  # an address Google's proxies connect from
_REFERENCE = re.compile(r"\$\{(google_[a-z_]+)\.([\w-]+)\.[a-z_]+\}")


@dataclass(frozen=True)
class Route:
    rule: str                      # the forwarding rule's name
    port: int                      # its port (the first of its port range)
    instances: tuple[str, ...]     # instance names behind it
    target_port: int               # the instances' named port


def _resource(stack: dict, reference: str) -> dict:
    match = _REFERENCE.fullmatch(reference)
    if match is None:
        raise KeyError(f"not a reference to a resource of the stack: {reference}")
    return stack["resource"][match.group(1)][match.group(2)]


def routes(stack: dict) -> list[Route]:
    """Where each global forwarding rule of the rendered stack leads."""
    found = []
    for rule in stack.get("resource", {}).get("google_compute_global_forwarding_rule", {}).values():
        target = _resource(stack, rule["target"])
        service = _resource(stack, _resource(stack, target["url_map"])["default_service"]) if "url_map" in target \
            else _resource(stack, target["backend_service"])
        names, ports = [], set()
        for backend in service.get("backend", []):
            group = _resource(stack, backend["group"])
            names += [_resource(stack, reference)["name"] for reference in group.get("instances", [])]
            ports |= {p["port"] for p in group.get("named_port", []) if p["name"] == service.get("port_name", "http")}
        if len(ports) != 1:
            raise ValueError(f"{rule['name']}: its backends name {len(ports)} ports called {service.get('port_name')}")
        found.append(Route(rule["name"], int(str(rule["port_range"]).split("-")[0]), tuple(names), ports.pop()))
    return found


class GceFrontDoor:
    def __init__(self, sim, stack: dict) -> None:
        self.sim = sim
        self.routes = routes(stack)
        self.urls: dict[int, str] = {}  # forwarding rule port -> http://127.0.0.1:PORT
        self._forwarders: list[Forwarder] = []
        self.ns = ""

    def start(self) -> GceFrontDoor:
        self.ns = self.sim.attach_namespace(f"gfe{len(self.sim._front_doors)}", *GOOGLE_FRONT_END)
        for route in self.routes:
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            self.urls[route.port] = f"http://127.0.0.1:{listener.getsockname()[1]}"
            self._forwarders.append(Forwarder(listener, self._connector(route)).start())
        return self

    def _connector(self, route: Route):
        turns = itertools.count()

        def connect() -> socket.socket:
            boxes = [box for name in route.instances for box in self.sim.booted(name)]
            if not boxes:
                raise LookupError(f"{route.rule}: no instance of {', '.join(route.instances)} is running")
            box = boxes[next(turns) % len(boxes)]
            connection = netns.connect_in_ns(self.ns, box.ip, route.target_port, timeout=10)
            connection.settimeout(None)
            return connection

        return connect

    def url(self, port: int = 443) -> str:
        return self.urls[port]

    def close(self) -> None:
        for forwarder in self._forwarders:
            forwarder.stop()
        self._forwarders.clear()
