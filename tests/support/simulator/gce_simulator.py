"""The machine simulator for Compute Engine: every instance the fake Compute API reports
RUNNING is booted in a sandbox from its `startup-script` metadata.

    with running_fake_compute() as compute, running_gcs() as gcs, running_secret_manager() as sm, \\
            GceSimulator(compute, tmp_path, storage=gcs.url, secretmanager=sm.url) as sim:
        InstancesClient(...).insert(...)        # through the fake, with a startup-script
        box = sim.wait_running("hub-1")         # its own netns with the fake's networkIP
        box.exec(["curl", ...])                 # runs inside the instance
        InstancesClient(...).delete(...)
        sim.wait_stopped("hub-1")               # processes killed, namespace removed

A watcher thread polls the fake through google-cloud-compute (aggregatedList) and keeps
the sandboxes in step: boots new RUNNING instances, stops those deleted or no longer
running (TERMINATED, STOPPED, ...), turns a guest's `poweroff` into `compute.power_off`
(GCE leaves such an instance TERMINATED), and bind-mounts disks labelled `mount-point`.
Inside, each instance has a metadata server (gce_metadata.py) and reaches the Google API
fakes on its subnet's router address (ports below), as listed in
/etc/graticule/google-endpoints.json, standing in for Private Google Access.
The rendered stack's INGRESS firewall rules are enforced once a test asks
(`sim.firewall(stack)`, gce_firewall.py; until then instances reach each other freely);
its load balancer is a host listener (`sim.front_door(stack)`, gce_front_door.py).
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import subprocess
import time
from pathlib import Path

import requests
from google.api_core import exceptions as google_errors

from tests.support.gcp import (
    PROJECT_NUMBER,
    compute_disks,  # noqa: F401  (the fake Compute API's disks, which it reads)
)

from . import netns
from .gce_cloud import GONE, GceInstance, GceView, last
from .gce_firewall import Member, Rule, rules_from_stack, ruleset
from .gce_front_door import GceFrontDoor
from .gce_identity import IdentityIssuer
from .gce_metadata import GceMetadata, GceMetadataServer
from .gce_sandbox import GceSandbox
from .machine_simulator import MachineSimulator
from .sandbox import Sandbox
from .shutdown import REQUEST as SHUTDOWN_REQUEST
from .shutdown import install as install_poweroff
from .volumes import bind_into

# Where each Google API fake answers on every subnet's router address (Private Google Access).
# `certs`: the identity tokens' signing certificates (gce_identity.py), Google's oauth2/v1/certs.
API_PORTS = {"compute": 80, "storage": 81, "secretmanager": 82, "certs": 83, "logging": 84}
_counter = itertools.count()


class GceSimulator(MachineSimulator):
    # The fake's answers a poll retries rather than fails on, up to TRANSIENT_LIMIT in a row.
    TRANSIENT = (google_errors.ServerError, google_errors.TooManyRequests, requests.ConnectionError)

    def __init__(self, compute, workdir: Path, *, storage: str | None = None, secretmanager: str | None = None,
                 project: str | None = None, poll_interval: float = 0.25, logging: str | None = None) -> None:
        """`compute`: the fake Compute API (its `url`, `power_off(name)`); `storage`,
        `secretmanager`, `logging`: loopback URLs of those fakes, for the instances to reach."""
        super().__init__(workdir, poll_interval, f"gce{os.getpid()}-{next(_counter)}", "gce-sim-watcher")
        self.compute = compute
        self.project = project or getattr(compute, "project", "oceanlab-prod")
        self.apis = {name: url for name, url in
                     (("compute", compute.url), ("storage", storage), ("secretmanager", secretmanager)) if url}
        if logging:
            self.apis["logging"] = logging
        self.view = GceView(compute.url, self.project)
        self._metadata_view = GceView(compute.url, self.project)  # the metadata servers' own client
        self.sandboxes: dict[str, GceSandbox] = {}  # instance id -> its sandbox
        self.stopped_names: dict[str, str] = {}  # id -> name of each instance stopped
        self.powered_off: set[str] = set()  # ids of instances whose guest powered off
        self._front_doors: list[GceFrontDoor] = []
        self._own_namespaces: list[str] = []  # the front doors'
        self._firewall: list[Rule] | None = None  # None: not modelled (every instance open to all)
        self._members: list[Member] = []
        self._disks: dict[str, dict[str, str | None]] = {}  # instance id -> {disk URL: mount point or None}
        self.identity = IdentityIssuer()  # signs the metadata servers' identity tokens

    # lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> GceSimulator:
        try:
            self._create_vpc()
            self.apis["certs"] = self.identity.serve()
            for name, url in self.apis.items():
                self._forward(API_PORTS[name], url)
            self._watcher.start()
        except BaseException:
            self.close()
            raise
        return self

    def forward(self, port: int, url: str) -> None:
        """A service on this machine's loopback (`url`), reached by every instance at its
        subnet's router address and `port` (a test's stand-in for something off the VPC)."""
        self._forward(port, url)

    def _close_services(self) -> None:
        for front_door in self._front_doors:
            front_door.close()
        self.identity.close()

    # watching the fake ---------------------------------------------------------------
    def sync(self) -> None:
        """Bring the sandboxes in line with the fake Compute API once."""
        with self._lock:
            instances = self.view.instances()
            self._members = [Member(i.ip, i.tags, i.service_account) for i in instances if i.status == "RUNNING"]
            for instance in instances:
                if self._halt.is_set():
                    return
                known = instance.id in self.sandboxes or instance.id in self.stopped
                if instance.status == "RUNNING" and not known:
                    self._boot(instance)
                elif instance.status in GONE and instance.id in self.sandboxes:
                    self._stop(instance.id)
            listed = {i.id for i in instances}
            for instance_id in [i for i in self.sandboxes if i not in listed]:  # deleted
                self._stop(instance_id)
            self._apply_firewall()
            self._power_off_requested()
            self._present_disks(instances)

    def _boot(self, instance: GceInstance) -> None:
        started = time.monotonic()
        box = GceSandbox(instance_id=instance.id, ip=instance.ip, cidr=self.view.subnetwork_cidr(instance),
                         ns=f"{self.prefix}-{instance.id}", directory=self.workdir / f"{instance.name}-{instance.id}",
                         name=instance.name, zone=instance.zone)
        self._attach(box, "gce")
        box.extra["firewall_target"] = (instance.tags, instance.service_account)
        self._apply_firewall()
        self._start_metadata_server(instance, box)
        box.prepare(self.rootfs)
        install_poweroff(box.root)
        endpoints = {name: f"http://{box.gateway}:{API_PORTS[name]}" for name in self.apis}
        box.write_gce_config(instance.attributes.get("startup-script", ""), endpoints, self.project)
        self._start_guest(box, started)

    def _start_metadata_server(self, instance: GceInstance, box: GceSandbox) -> None:
        account = {"aliases": ["default"], "email": instance.service_account, "scopes": list(instance.scopes)}
        accounts = {"default": account, instance.service_account: account} if instance.service_account else {}
        netmask = str(ipaddress.ip_network(box.cidr).netmask)
        fields = {
            "id": instance.id, "name": instance.name, "hostname": f"{instance.name}.{instance.zone}.c.{self.project}"
            ".internal", "zone": f"projects/{PROJECT_NUMBER}/zones/{instance.zone}",
            "machine-type": f"projects/{PROJECT_NUMBER}/machineTypes/{instance.machine_type}",
            "network-interfaces": {"0": {"ip": box.ip, "gateway": box.gateway, "subnetmask": netmask,
                                         "network": f"projects/{PROJECT_NUMBER}/networks/{last(instance.subnetwork)}"}},
            "service-accounts": accounts, "tags": list(instance.tags)}
        project = {"project-id": self.project, "numeric-project-id": PROJECT_NUMBER, "attributes": {}}
        described = {"id": instance.id, "name": instance.name, "zone": instance.zone, "project_id": self.project}

        def identity(audience: str, email: str, full: bool) -> str:
            return self.identity.token(audience, email=email, instance=described if full else None)

        metadata = GceMetadata(fields, project, lambda: self._metadata_view.attributes(instance), identity)
        self._serve_metadata(box, lambda listener: GceMetadataServer(listener, metadata))

    def _apply_firewall(self) -> None:
        """Each instance's ingress rules from the rendered firewall, re-applied when they change
        (instances come and go: source tags mean their current IPs)."""
        if self._firewall is None:
            return
        for box in self.sandboxes.values():
            if "firewall_target" not in box.extra or not netns.ns_exists(box.ns):
                continue
            tags, account = box.extra["firewall_target"]
            self._apply_ruleset(box, ruleset(self._firewall, tags, account, self._members))

    def attach_namespace(self, suffix: str, ip: str, cidr: str) -> str:
        """A namespace of the simulator's own on the VPC bridge (removed with it); its name."""
        name = f"{self.prefix}-{suffix}"
        netns.add_ns(name)
        self._own_namespaces.append(name)
        self.vpc.attach(name, f"gce{next(self._veths)}", ip, cidr)
        return name

    def _power_off_requested(self) -> None:
        """A guest's poweroff/shutdown: GCE stops the instance (TERMINATED), whatever else it has."""
        for instance_id, box in list(self.sandboxes.items()):
            if instance_id in self.powered_off or not box.extra.get("booted"):
                continue
            if (box.root / SHUTDOWN_REQUEST).exists():
                self.compute.power_off(box.name, box.zone)
                self.powered_off.add(instance_id)

    def _present_disks(self, instances: list[GceInstance]) -> None:
        """Bind-mount each labelled disk attached to a booted instance (once per instance)."""
        for instance in instances:
            box = self.sandboxes.get(instance.id)
            if box is None or not box.extra.get("booted"):
                continue
            seen = self._disks.setdefault(instance.id, {})
            for source in instance.disks:
                if source in seen:
                    continue
                seen[source] = mount_point = self.view.disk_mount_point(source)
                if mount_point:
                    zone = source.split("/zones/")[1].split("/")[0] if "/zones/" in source else instance.zone
                    bind_into(box, self.workdir / "disks" / f"{zone}-{last(source)}", mount_point)

    def _stop(self, instance_id: str) -> Sandbox:
        self.stopped_names[instance_id] = self.sandboxes[instance_id].name
        self._disks.pop(instance_id, None)
        box = super()._stop(instance_id)
        if not self._halt.is_set():
            self._forget_address(box.ip)
        return box

    def _forget_address(self, ip: str) -> None:
        """Drop every namespace's ARP entry for a stopped instance's IP: the fake hands a freed
        address out again, and a stale entry would send a replacement's packets to a gone MAC
        (GCE's network answers ARP itself; a bridge does not)."""
        for ns in [self.vpc.name, *self._own_namespaces, *(b.ns for b in self.sandboxes.values())]:
            if netns.ns_exists(ns):
                subprocess.run(["ip", "-n", ns, "neigh", "flush", "to", ip], capture_output=True)

    # for tests -----------------------------------------------------------------------
    def firewall(self, stack: dict) -> None:
        """Enforce the rendered stack's INGRESS firewall rules from now on (gce_firewall.py)."""
        with self._lock:
            self._firewall = rules_from_stack(stack, self.project)
            self._apply_firewall()

    def front_door(self, stack: dict) -> GceFrontDoor:
        """The rendered stack's load balancer (gce_front_door.py), closed with the simulator."""
        door = GceFrontDoor(self, stack).start()
        self._front_doors.append(door)
        return door

    def booted(self, name: str) -> list[GceSandbox]:
        """The booted sandboxes of instances named `name` (one, or none).

        Without the lock, as the AWS simulator's `_address_of`: a sync pass holds it while it
        boots or tears down sandboxes (tens of seconds under load), and the front door asks
        this for every connection: with the lock, the hub stopped answering while a finished
        test's cluster instances were torn down (a 30 s login timeout in the next test)."""
        boxes = list(self.sandboxes.values())  # a snapshot: the watch loop adds and removes
        return [box for box in boxes if box.name == name and box.extra.get("booted")]

    def _keys(self, instance_id: str, box: Sandbox) -> tuple[str, ...]:
        return (box.name, instance_id)  # wait_* take the instance's name or id

    def _stopped_keys(self) -> set[str]:
        # For a name whose replacement may boot meanwhile, wait_stopped wants the old box's id.
        return self.stopped | set(self.stopped_names.values())
