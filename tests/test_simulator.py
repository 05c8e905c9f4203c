"""The machine simulator boots moto's instances for real: namespaces, Debian root, user data.

Everything runs here: moto's server, network namespaces joined by a bridge in a VPC
namespace of the test's own, nftables rules built from moto's security groups, a
debootstrapped Debian root (made on first use, cached under GRATICULE_SIM_ROOTFS).
No packet leaves namespaces the test created, except to moto on 127.0.0.1.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import psutil
import pytest

from tests.support.moto_server import running_moto
from tests.support.simulator import Simulator, missing_prerequisites
from tests.support.simulator import firewall as sim_firewall
from tests.support.simulator import netns as sim_netns

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing_prerequisites() is not None,
                                                   reason=missing_prerequisites() or "")]
AMI = "ami-12c6146b"  # one of moto's built-in images


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """A real moto server for this module, stopped by PID at the end."""
    with running_moto(log=tmp_path_factory.mktemp("moto") / "moto_server.log") as server:
        yield server

WEB_USER_DATA = """\
#!/bin/sh
set -e
mkdir -p /srv
hostname > /srv/index.html
cat > /etc/systemd/system/web.service <<'UNIT'
[Service]
WorkingDirectory=/srv
ExecStart=/usr/bin/python3 -m http.server 8080
UNIT
systemctl daemon-reload
systemctl enable --now web.service
# A second server on a port no security group opens.
nohup python3 -m http.server 9090 > /var/log/closed-port.log 2>&1 &
"""

# Runs inside a sandbox: connect and say what happened, without waiting forever.
PROBE = textwrap.dedent("""\
    import socket, sys, time
    host, port, tries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for attempt in range(tries):
        try:
            socket.create_connection((host, port), timeout=3).close()
            print("connected"); break
        except TimeoutError:
            print("timeout"); break
        except ConnectionRefusedError:
            if attempt == tries - 1:
                print("refused")
            time.sleep(1)
""")


def _probe(box, host: str, port: int, tries: int = 60) -> str:
    """From inside `box`: connected, timeout (filtered) or refused (nothing listening)."""
    result = box.run("python3", "-c", PROBE, host, str(port), str(tries))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def sim(moto, tmp_path_factory):
    with Simulator(moto, tmp_path_factory.mktemp("sim")) as simulator:
        yield simulator


def _run(ec2, user_data: str, groups: list[str], **kwargs) -> dict:
    """One instance in the default VPC's subnet of the first zone (as the platform names a subnet)."""
    subnet = min(ec2.describe_subnets()["Subnets"], key=lambda s: s["AvailabilityZone"])["SubnetId"]
    return ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.small", UserData=user_data,
                             SecurityGroupIds=groups, SubnetId=subnet, **kwargs)["Instances"][0]


def test_security_groups_filter_traffic_between_sandboxes(sim, moto):
    ec2 = moto.client("ec2")
    vpc_id = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    clients = ec2.create_security_group(GroupName="clients", Description="c", VpcId=vpc_id)["GroupId"]
    web = ec2.create_security_group(GroupName="web", Description="w", VpcId=vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": clients}]}])

    # The server boots first: its rule naming the clients group only admits the client's IP
    # once the simulator re-syncs the rules after the client boots.
    server = _run(ec2, WEB_USER_DATA, [web])
    client = _run(ec2, "#!/bin/sh\necho client up\n", [clients])
    b, a = sim.wait_booted(server["InstanceId"]), sim.wait_booted(client["InstanceId"])

    for box, instance in ((a, client), (b, server)):
        assert box.private_ip == instance["PrivateIpAddress"]
        eth0 = sim_netns.ip("-n", box.netns, "-4", "addr", "show", "dev", "eth0").stdout
        assert f"inet {instance['PrivateIpAddress']}/" in eth0

    # Allowed: the web group admits the clients group on 8080; the unit the user data enabled serves it.
    assert _probe(a, b.private_ip, 8080) == "connected"
    page = a.run("python3", "-c", f"import urllib.request; print(urllib.request.urlopen("
                 f"'http://{b.private_ip}:8080/index.html', timeout=30).read().decode())")
    assert page.stdout.strip() == f"ip-{b.private_ip.replace('.', '-')}"

    # Not opened by any group: the SYN is dropped in B's namespace, so A's connect times out.
    assert _probe(b, "127.0.0.1", 9090) == "connected"  # it does listen
    dropped_before = sim_firewall.dropped_packets(b.netns)
    assert _probe(a, b.private_ip, 9090, tries=1) == "timeout"
    assert sim_firewall.dropped_packets(b.netns) > dropped_before
    # And the clients group opens nothing: B cannot reach A at all.
    assert _probe(b, a.private_ip, 22, tries=1) == "timeout"


def test_the_vpc_has_no_way_out(sim):
    assert sim_netns.ip("-n", sim.vpc_netns, "route", "show", "default").stdout.strip() == ""
    # `ip route get` asks the kernel's routing table: no packet is sent.
    unroutable = sim_netns.ip("-n", sim.vpc_netns, "route", "get", "192.0.2.1", check=False)
    assert unroutable.returncode != 0 and "unreachable" in unroutable.stderr
    assert sim_netns.in_netns(sim.vpc_netns, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    rules = sim_netns.in_netns(sim.vpc_netns, "nft", "list", "ruleset").stdout
    assert "policy drop" in rules and "nat" not in rules
    # The bridge and the veths live in the VPC namespace, not on the host.
    host_links = sim_netns.ip("-o", "link", "show").stdout
    assert "vpcbr0" not in host_links and sim.prefix not in host_links


def test_sandbox_reaches_moto_with_role_credentials_from_metadata(sim, moto):
    iam, s3, ec2 = moto.client("iam"), moto.client("s3"), moto.client("ec2")
    iam.create_role(RoleName="sim-hub", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.create_instance_profile(InstanceProfileName="sim-hub")
    iam.add_role_to_instance_profile(InstanceProfileName="sim-hub", RoleName="sim-hub")
    s3.create_bucket(Bucket="sim-results", CreateBucketConfiguration={"LocationConstraint": moto.region})
    user_data = textwrap.dedent("""\
        #!/usr/bin/python3
        import json, os, urllib.error, urllib.request
        import boto3
        imds = "http://169.254.169.254/latest"
        try:
            urllib.request.urlopen(imds + "/meta-data/instance-id", timeout=5)
            v1 = "answered"
        except urllib.error.HTTPError as error:
            v1 = error.code
        put = urllib.request.Request(imds + "/api/token", method="PUT",
                                     headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        token = urllib.request.urlopen(put, timeout=5).read().decode()
        def meta(path):
            request = urllib.request.Request(imds + "/meta-data/" + path,
                                             headers={"X-aws-ec2-metadata-token": token})
            return urllib.request.urlopen(request, timeout=5).read().decode()
        # Debian's boto3 predates AWS_ENDPOINT_URL, so the endpoint is passed explicitly;
        # the credentials come from the metadata service, as on EC2.
        session = boto3.Session()
        s3 = session.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
        found = {"instance_id": meta("instance-id"), "local_ipv4": meta("local-ipv4"),
                 "zone": meta("placement/availability-zone"), "imdsv1": v1,
                 "access_key": session.get_credentials().access_key,
                 "credential_source": session.get_credentials().method}
        s3.put_object(Bucket="sim-results", Key=found["instance_id"], Body=json.dumps(found).encode())
        print("reported", found)
        """)
    instance = _run(ec2, user_data, [], IamInstanceProfile={"Name": "sim-hub"})
    box = sim.wait_booted(instance["InstanceId"])
    log = box.console_log.read_text()
    assert "user data exited with 0" in log, log

    body = s3.get_object(Bucket="sim-results", Key=instance["InstanceId"])["Body"].read()
    found = json.loads(body)
    assert found["instance_id"] == instance["InstanceId"]
    assert found["local_ipv4"] == instance["PrivateIpAddress"]
    assert found["zone"] == instance["Placement"]["AvailabilityZone"]
    assert found["imdsv1"] == 401  # tokens are required, as the launch templates demand
    assert found["credential_source"] == "iam-role"
    assert found["access_key"].startswith("ASIASIMULATOR")


@pytest.mark.parametrize("action", ["terminate_instances", "stop_instances"])
def test_terminating_or_stopping_an_instance_stops_its_sandbox(sim, moto, action):
    ec2 = moto.client("ec2")
    instance = _run(ec2, "#!/bin/sh\nnohup sleep 3600 > /dev/null 2>&1 &\n", [])
    box = sim.wait_booted(instance["InstanceId"])
    pids = box.pids()
    assert len(pids) >= 3  # unshare, init, the user data's sleep
    assert box.netns in sim_netns.names()

    getattr(ec2, action)(InstanceIds=[instance["InstanceId"]])
    sim.wait_gone(instance["InstanceId"])
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert box.netns not in sim_netns.names()


def test_teardown_after_a_failure_leaves_nothing(moto, tmp_path):
    ec2 = moto.client("ec2")
    seen: dict = {}
    with pytest.raises(RuntimeError, match="the test failed here"), Simulator(moto, tmp_path) as sim:
        instance = _run(ec2, "#!/bin/sh\nnohup sleep 3600 > /dev/null 2>&1 &\n", [])
        box = sim.wait_booted(instance["InstanceId"])
        seen.update(prefix=sim.prefix, pids=box.pids(), mounts=box.run("cat", "/proc/mounts").stdout)
        assert "sim-root" in seen["mounts"]  # the overlay root, inside the sandbox's mount namespace
        # No DNS in the VPC: the host's resolver address must not leak into the sandbox.
        assert box.run("cat", "/etc/resolv.conf").stdout.startswith("nameserver 127.0.0.1\n")
        raise RuntimeError("the test failed here")

    assert not [n for n in sim_netns.names() if n.startswith(seen["prefix"])]
    assert not [pid for pid in seen["pids"] if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert str(tmp_path) not in Path("/proc/mounts").read_text()
    assert "sim-root" not in Path("/proc/mounts").read_text()
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
