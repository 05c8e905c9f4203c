"""The machine simulator: every instance moto reports running is booted in a sandbox.

    with Simulator(moto_server, tmp_path) as sim:
        ec2.run_instances(..., UserData=script)
        box = sim.wait_running(instance_id)   # its own netns with moto's private IP
        box.exec(["curl", ...])               # runs inside the instance
        ec2.terminate_instances(...)
        sim.wait_stopped(instance_id)         # processes killed, namespace removed

A watcher thread polls moto (describe_instances) and keeps the sandboxes in step with
it: boots new running instances, stops terminated or stopped ones, and re-applies each
instance's security groups when instances or groups change. Leaving the `with` block
stops everything, also when the test failed.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import netns, shutdown
from .cloud import GONE, CloudView, Instance
from .imds import InstanceMetadata, MetadataServer
from .load_balancer import LoadBalancers
from .machine_simulator import MachineSimulator
from .sandbox import Sandbox
from .security_groups import ruleset
from .volumes import Volumes

ENDPOINT_PORT = 80  # the moto forwarder on every subnet's router address, like a VPC endpoint
_counter = itertools.count()


class Simulator(MachineSimulator):
    def __init__(self, moto, workdir: Path, poll_interval: float = 0.25, api_url: str | None = None) -> None:
        """`api_url`: what instances reach as their endpoint (a loopback URL; default moto's own,
        e.g. a CapacityProxy's url so that launches from inside an instance meet its refusals)."""
        super().__init__(workdir, poll_interval, f"gsim{os.getpid()}-{next(_counter)}", "sim-watcher")
        self.moto = moto
        self.api_url = api_url or moto.url
        self.cloud = CloudView(moto)
        self.shutdowns: dict[str, str] = {}  # instance id -> the shutdown behaviour its power-off met
        self._reclaims: list[threading.Timer] = []  # spot interruptions under way
        self.load_balancers = LoadBalancers(moto, self.vpc, self.prefix, self._address_of)
        self.volumes = Volumes(moto, self.workdir)

    # lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Simulator:
        try:
            self._create_vpc()
            self._forward(ENDPOINT_PORT, self.api_url)
            self._watcher.start()
        except BaseException:
            self.close()
            raise
        return self

    def _halting(self) -> None:
        for reclaim in self._reclaims:
            reclaim.cancel()

    def _close_services(self) -> None:
        self.load_balancers.close()

    # watching moto -------------------------------------------------------------------
    def sync(self) -> None:
        """Bring the sandboxes in line with moto once."""
        with self._lock:
            instances = self.cloud.instances()
            for instance in instances:
                if self._halt.is_set():
                    return
                known = instance.instance_id in self.sandboxes or instance.instance_id in self.stopped
                if instance.state == "running" and not known:
                    self._boot(instance)
                elif instance.state in GONE and instance.instance_id in self.sandboxes:
                    self._stop(instance.instance_id)
            self.load_balancers.sync(taken={i.ip for i in instances})
            self._apply_security_groups(instances)
            shutdown.carry_out(self.cloud.ec2, self.sandboxes, self.shutdowns)
            self.volumes.sync(self.sandboxes)

    def _boot(self, instance: Instance) -> None:
        started = time.monotonic()
        box = Sandbox(instance_id=instance.instance_id, ip=instance.ip, cidr=self._network_of(instance),
                      ns=f"{self.prefix}-{instance.instance_id}", directory=self.workdir / instance.instance_id)
        self._attach(box, "sim")
        box.extra["security_groups"] = instance.group_ids
        self._apply_security_groups(self.cloud.instances())
        user_data = self.cloud.user_data(instance.instance_id)
        self._start_imds(instance, box, user_data)
        box.prepare(self.rootfs)
        shutdown.install(box.root)
        environment = {"AWS_ENDPOINT_URL": f"http://{box.gateway}:{ENDPOINT_PORT}",
                       "AWS_DEFAULT_REGION": self.moto.region, "AWS_REGION": self.moto.region}
        box.write_guest_config(user_data, environment)
        self._start_guest(box, started)

    def _network_of(self, instance: Instance) -> str:
        cidr = self.cloud.subnet_cidr(instance.subnet_id)
        if ipaddress.ip_address(instance.ip) in ipaddress.ip_network(cidr):
            return cidr
        # moto gives an instance launched without SubnetId a random 10.x address outside
        # the default subnet; such an instance gets a network of its own around it.
        return str(ipaddress.ip_network(f"{instance.ip}/16", strict=False))

    def _start_imds(self, instance: Instance, box: Sandbox, user_data: bytes) -> None:
        role = self.cloud.role_of(instance.profile_arn)
        fields = {"instance-id": instance.instance_id, "local-ipv4": box.ip, "instance-type": instance.instance_type,
                  "ami-id": instance.image_id, "placement/availability-zone": instance.zone,
                  "placement/region": self.moto.region, "local-hostname": box.hostname}
        identity = {"instanceId": instance.instance_id, "region": self.moto.region, "availabilityZone": instance.zone,
                    "privateIp": box.ip, "instanceType": instance.instance_type, "imageId": instance.image_id,
                    "accountId": self.moto.account_id, "profileArn": instance.profile_arn or ""}
        metadata = InstanceMetadata(fields, user_data, identity, role[0] if role else None,
                                    lambda: self.cloud.role_credentials(metadata.role_arn, instance.instance_id))
        metadata.role_arn = role[1] if role else ""
        if role is None:  # a profile associated after launch, or its role added late: asked again
            metadata.resolve_role = lambda: self.cloud.role_of(self.cloud.profile_of(instance.instance_id))
        self._serve_metadata(box, lambda listener: MetadataServer(listener, metadata))

    def _apply_security_groups(self, instances: list[Instance]) -> None:
        running = [i for i in instances if i.state == "running"]
        ips_by_group = self.load_balancers.memberships()
        for instance in running:
            for group_id in instance.group_ids:
                ips_by_group.setdefault(group_id, []).append(instance.ip)
        boxes = [b for b in self.sandboxes.values() if "security_groups" in b.extra and netns.ns_exists(b.ns)]
        groups = self.cloud.security_groups({g for b in boxes for g in b.extra["security_groups"]})
        for box in boxes:
            self._apply_ruleset(box, ruleset([groups[g] for g in box.extra["security_groups"] if g in groups],
                                             ips_by_group))

    def _stop(self, instance_id: str) -> Sandbox:
        self.volumes.forget(instance_id)
        return super()._stop(instance_id)

    def _address_of(self, instance_id: str) -> str | None:
        box = self.sandboxes.get(instance_id)
        return box.ip if box is not None and box.extra.get("booted") else None

    # for tests -----------------------------------------------------------------------
    def interrupt_spot(self, instance_id: str, notice_seconds: float = 120.0) -> datetime:
        """What EC2 does when it reclaims a spot instance: the interruption notice in the
        instance's metadata at once, then TerminateInstances (through moto) `notice_seconds`
        later (EC2: two minutes). Returns the announced time. Only a booted spot instance."""
        (reservation,) = self.cloud.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        if reservation["Instances"][0].get("InstanceLifecycle") != "spot":
            raise ValueError(f"{instance_id} is not a spot instance: EC2 interrupts only those")
        with self._lock:
            server = self._servers.get(instance_id)
        if server is None:
            raise ValueError(f"{instance_id} has not been booted by the simulator")
        at = datetime.now(UTC) + timedelta(seconds=notice_seconds)
        server.metadata.interrupt("terminate", at)
        reclaim = threading.Timer(notice_seconds, self._reclaim, args=(instance_id,))
        reclaim.daemon = True
        self._reclaims.append(reclaim)
        reclaim.start()
        return at

    def _reclaim(self, instance_id: str) -> None:
        if self._halt.is_set():
            return
        try:
            self.cloud.ec2.terminate_instances(InstanceIds=[instance_id])
        except Exception as error:  # surfaced by wait_* in the test's thread
            self.errors.append(error)

    def wait_load_balancer(self, name: str, port: int, timeout: float = 60.0) -> str:
        """The URL on this machine's loopback where load balancer `name`'s listener on `port` answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_errors()
            with self._lock:
                url = self.load_balancers.url(name, port)
            if url:
                return url
            time.sleep(0.05)
        raise TimeoutError(f"no listener on port {port} of load balancer {name} within {timeout} s")
