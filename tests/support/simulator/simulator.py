"""The machine simulator: every instance moto reports running boots in a sandbox.

    with Simulator(moto_server, tmp_path) as sim:
        ec2.run_instances(...)
        box = sim.wait_booted(instance_id)

A background thread polls describe_instances: a `running` instance gets a sandbox, a
stopped or terminated one loses it, and every sandbox's security-group rules are rebuilt
from moto (so a group rule naming another group follows that group's members). Leaving
the block stops every process by PID and deletes every namespace, even after a failure.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import secrets
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.moto_server import MotoServer
from tests.support.simulator import firewall, netns, sandbox
from tests.support.simulator.forwarder import Forwarder
from tests.support.simulator.imds import InstanceMetadata
from tests.support.simulator.rootfs import ensure_rootfs

ENDPOINT_PORT = 4566  # moto's port as seen from the VPC (any port: the VPC has its own namespace)
BRIDGE = "vpcbr0"


class SimulatorError(RuntimeError):
    pass


def missing_prerequisites() -> str | None:
    """Why the simulator cannot run here, or None (tests skip with this reason)."""
    if os.geteuid() != 0:
        return "the machine simulator needs root (network namespaces, mounts, chroot)"
    for tool in ("ip", "unshare", "nsenter", "nft", "debootstrap", "chroot"):
        if shutil.which(tool) is None:
            return f"the machine simulator needs `{tool}` on PATH"
    return None


class Simulator:
    def __init__(self, moto: MotoServer, workdir: Path, poll_seconds: float = 0.5):
        self.moto = moto
        self.workdir = Path(workdir)
        self.poll_seconds = poll_seconds
        self.prefix = f"gsim{secrets.token_hex(3)}"
        self.vpc_netns = f"{self.prefix}-vpc"
        self.sandboxes: dict[str, sandbox.Sandbox] = {}
        self.errors: dict[str, BaseException] = {}
        self._ec2 = moto.client("ec2")
        self._iam = moto.client("iam")
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._forwarder: Forwarder | None = None
        self._rootfs: Path | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Simulator:
        reason = missing_prerequisites()
        if reason:
            raise SimulatorError(reason)
        try:
            self._rootfs = ensure_rootfs()
            self._create_vpc()
            self._thread = threading.Thread(target=self._poll_loop, name="sim-poll", daemon=True)
            self._thread.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        with self._lock:
            for instance_id in list(self.sandboxes):
                self._stop(instance_id)
        if self._forwarder is not None:
            self._forwarder.close()
        netns.delete(self.vpc_netns)

    def _create_vpc(self) -> None:
        """The VPC: a namespace with one bridge, forwarding only between its own subnets."""
        netns.add(self.vpc_netns)
        netns.ip("-n", self.vpc_netns, "link", "add", BRIDGE, "type", "bridge")
        netns.ip("-n", self.vpc_netns, "link", "set", BRIDGE, "up")
        netns.in_netns(self.vpc_netns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # Where br_netfilter is loaded, bridged frames would also meet the forward chain.
        netns.in_netns(self.vpc_netns, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0", check=False)
        # No default route exists in the new namespace; the rules make "nowhere else" explicit:
        # routed traffic must enter and leave by the bridge, and nothing is NATed.
        netns.in_netns(self.vpc_netns, "nft", "-f", "-", input=(
            "table inet vpc {\n  chain forward {\n    type filter hook forward priority filter; policy drop;\n"
            f"    iifname \"{BRIDGE}\" oifname \"{BRIDGE}\" accept\n"
            "    iifname \"sv*\" oifname \"sv*\" accept\n  }\n}\n"))
        moto = urlsplit(self.moto.url)
        listener = netns.listener_in(self.vpc_netns, "0.0.0.0", ENDPOINT_PORT)
        self._forwarder = Forwarder(listener, (moto.hostname, moto.port)).start()

    # -- what tests call ---------------------------------------------------------------
    def wait_booted(self, instance_id: str, timeout: float = 300) -> sandbox.Sandbox:
        """The instance's sandbox once its init has run the user data and started its units."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if instance_id in self.errors:
                    raise SimulatorError(f"{instance_id} failed to boot") from self.errors[instance_id]
                box = self.sandboxes.get(instance_id)
            if box is not None and box.console_log.exists() and box.boot_finished():
                return box
            if box is not None and box.process is not None and box.process.poll() is not None:
                raise SimulatorError(f"{instance_id}: sandbox exited\n{box.console_log.read_text()}")
            time.sleep(0.2)
        raise SimulatorError(f"{instance_id} did not boot within {timeout}s")

    def wait_gone(self, instance_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if instance_id not in self.sandboxes:
                    return
            time.sleep(0.2)
        raise SimulatorError(f"{instance_id}'s sandbox still exists after {timeout}s")

    def sync(self) -> None:
        """Make the sandboxes match moto's instances once (the poll thread does this too)."""
        with self._lock:
            instances = {i["InstanceId"]: i for r in self._describe() for i in r["Instances"]}
            running = {iid: i for iid, i in instances.items() if i["State"]["Name"] == "running"}
            for instance_id in list(self.sandboxes):
                if instance_id not in running:
                    self._stop(instance_id)
            for instance_id, instance in running.items():
                if instance_id not in self.sandboxes and instance_id not in self.errors:
                    try:
                        self._boot(instance)
                    except Exception as error:  # reported by wait_booted; the sandbox is undone
                        self.errors[instance_id] = error
                        self._stop(instance_id)
            self._sync_firewalls()

    # -- internals ---------------------------------------------------------------------
    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(Exception):  # moto hiccups: try again next round
                self.sync()
            self._stopping.wait(self.poll_seconds)

    def _describe(self) -> list[dict]:
        pages = self._ec2.get_paginator("describe_instances").paginate()
        return [r for page in pages for r in page["Reservations"]]

    def _boot(self, instance: dict) -> None:
        instance_id = instance["InstanceId"]
        subnet = self._ec2.describe_subnets(SubnetIds=[instance["SubnetId"]])["Subnets"][0]
        box = sandbox.Sandbox(
            instance_id=instance_id, private_ip=instance["PrivateIpAddress"],
            netns=f"{self.prefix}-{instance_id}", directory=self.workdir / instance_id,
            security_groups=tuple(g["GroupId"] for g in instance.get("SecurityGroups", [])), detected_at=time.time())
        self.sandboxes[instance_id] = box
        network = ipaddress.ip_network(subnet["CidrBlock"])
        if ipaddress.ip_address(box.private_ip) not in network:
            # moto picks a random 10.x address when run_instances names no subnet: give that
            # address a network of the subnet's size (the VPC namespace routes between them).
            network = ipaddress.ip_network(f"{box.private_ip}/{network.prefixlen}", strict=False)
        wiring = sandbox.Wiring(vpc_netns=self.vpc_netns, bridge=BRIDGE, subnet=network,
                                endpoint_url=f"http://{network.network_address + 1}:{ENDPOINT_PORT}")
        # Rules first: the instance's ports are filtered before anything in it listens.
        netns.add(box.netns)
        self._sync_firewalls(only=instance_id)
        sandbox.boot(box, wiring, self._rootfs, self._metadata(instance), self.moto.region)

    def _metadata(self, instance: dict) -> InstanceMetadata:
        attribute = self._ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
        encoded = attribute.get("UserData", {}).get("Value")
        role = None
        profile_arn = instance.get("IamInstanceProfile", {}).get("Arn")
        if profile_arn:
            name = profile_arn.rsplit("/", 1)[-1]
            with contextlib.suppress(self._iam.exceptions.NoSuchEntityException):
                roles = self._iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]
                role = roles[0]["RoleName"] if roles else None
        return InstanceMetadata(
            instance_id=instance["InstanceId"], local_ipv4=instance["PrivateIpAddress"],
            availability_zone=instance["Placement"]["AvailabilityZone"], region=self.moto.region,
            instance_type=instance["InstanceType"], role=role,
            user_data=base64.b64decode(encoded) if encoded else b"")

    def _sync_firewalls(self, only: str | None = None) -> None:
        """Rebuild the rules of every sandbox (or one) from moto's groups and their members."""
        members: dict[str, list[str]] = {}
        for box in self.sandboxes.values():
            for group_id in box.security_groups:
                members.setdefault(group_id, []).append(box.private_ip)
        group_ids = sorted(members)
        found = self._ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"] if group_ids else []
        groups = {g["GroupId"]: g for g in found}
        for instance_id, box in self.sandboxes.items():
            if only is not None and instance_id != only:
                continue
            rules = firewall.ruleset([groups[g] for g in box.security_groups if g in groups], members)
            if rules != box.firewall:
                firewall.apply(box.netns, rules)
                box.firewall = rules

    def _stop(self, instance_id: str) -> None:
        box = self.sandboxes.pop(instance_id, None)
        if box is not None:
            sandbox.stop(box, self.vpc_netns)

