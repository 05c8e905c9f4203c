"""The machines layer on AWS (deploy/cloud/aws.py, placement.py) against a real moto server,
with EC2's capacity errors injected at the API boundary by `CapacityProxy`.

Real parts: moto's EC2 API, boto3, the layer itself. moto ignores spot and the shutdown
behaviour set inside a launch template and does not honour `ClientToken` (a second
request with the same token launches again; see the first test): the layer passes both
in each request and looks for its own earlier launch before launching, and before sending
a launch again whose answer was lost (an endpoint in front of moto loses or throttles
answers: `_unreliable`).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from deploy.cloud import placement
from deploy.cloud.aws import AWSMachines
from deploy.cloud.deadman import DeadMan
from deploy.cloud.machines import MachinesError, MachineSpec
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.simulator.capacity import CapacityProxy

PLATFORM = "oceanlab"
TEMPLATE = "oceanlab-small"
TYPE = "m5.large"
ZONES = ("us-west-2a", "us-west-2b", "us-west-2c")
TAGS = {"platform": PLATFORM, "role": "worker", "user": "alice", "cluster": "c0ffee", "budget": "ocean"}


@pytest.fixture
def cloud(moto_server, monkeypatch):  # noqa: F811
    """A VPC like the stack's: a private subnet per zone (tagged as the stack tags them), a
    public one that must never be used, and the profile's launch template."""
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    moto_server.reset()
    ec2 = moto_server.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    private = {}
    for index, zone in enumerate(ZONES):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{index}.0/24", AvailabilityZone=zone)["Subnet"]
        ec2.create_tags(Resources=[subnet["SubnetId"]],
                        Tags=[{"Key": "platform", "Value": PLATFORM}, {"Key": "tier", "Value": "private"}])
        private[zone] = subnet["SubnetId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.100.0/24", AvailabilityZone=ZONES[0])["Subnet"]
    ec2.create_tags(Resources=[public["SubnetId"]],
                    Tags=[{"Key": "platform", "Value": PLATFORM}, {"Key": "tier", "Value": "public"}])
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName=TEMPLATE, LaunchTemplateData={
        "ImageId": image, "InstanceType": TYPE, "InstanceInitiatedShutdownBehavior": "terminate"})
    return moto_server, ec2, private


@pytest.fixture
def proxied(cloud):
    moto, ec2, private = cloud
    with CapacityProxy(moto) as proxy:
        yield proxy, AWSMachines(region=moto.region, endpoint_url=proxy.url, platform=PLATFORM), ec2, private


def _spec(**overrides) -> MachineSpec:
    return MachineSpec(**{"name": "oceanlab-c0ffee-w-1", "template": TEMPLATE, "tags": TAGS,
                          "user_data": "#!/bin/sh\necho hello\n", **overrides})


def _instances(ec2, **filters) -> list[dict]:
    answer = ec2.describe_instances(Filters=[{"Name": k, "Values": v} for k, v in filters.items()])
    return [i for r in answer["Reservations"] for i in r["Instances"]]


def test_every_tag_is_set_at_launch_and_a_power_off_terminates(cloud):
    moto, ec2, private = cloud
    machines = AWSMachines(region=moto.region, endpoint_url=moto.url, platform=PLATFORM)
    machine = machines.launch(_spec())

    (raw,) = _instances(ec2, **{"instance-id": [machine.id]})
    tags = {t["Key"]: t["Value"] for t in raw["Tags"]}
    assert {k: tags[k] for k in TAGS} == TAGS and tags["Name"] == "oceanlab-c0ffee-w-1"
    volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [machine.id]}])["Volumes"]
    assert volumes and all({t["Key"]: t["Value"] for t in v["Tags"]}["budget"] == "ocean" for v in volumes)
    behaviour = ec2.describe_instance_attribute(InstanceId=machine.id, Attribute="instanceInitiatedShutdownBehavior")
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    # The first zone's private subnet, found by the stack's tags (never the public one).
    assert raw["SubnetId"] == private[ZONES[0]] and machine.zone == ZONES[0]
    assert raw["InstanceType"] == TYPE and not machine.spot and "InstanceLifecycle" not in raw
    assert raw["ClientToken"] == placement.client_token(_spec(), placement.ON_DEMAND, ZONES[0])
    assert machine.launched_at is not None and machine.launched_at.tzinfo is not None


def test_a_retried_launch_starts_nothing_new(cloud):
    moto, ec2, _ = cloud
    machines = AWSMachines(region=moto.region, endpoint_url=moto.url, platform=PLATFORM)
    first = machines.launch(_spec())
    again = machines.launch(_spec())  # e.g. the gateway retrying after a lost answer
    assert again.id == first.id
    assert len(_instances(ec2, **{"tag:Name": ["oceanlab-c0ffee-w-1"]})) == 1
    other = machines.launch(_spec(name="oceanlab-c0ffee-w-2"))
    assert other.id != first.id

    # Why the layer looks itself: moto launches again for a token it has seen (EC2 would not).
    request = dict(ImageId="ami-12345678", MinCount=1, MaxCount=1, ClientToken="same-token")
    ec2.run_instances(**request)
    ec2.run_instances(**request)
    assert len([i for i in _instances(ec2) if i.get("ClientToken") == "same-token"]) == 2


def test_spot_when_the_profile_allows_it(proxied):
    proxy, machines, ec2, _ = proxied
    machine = machines.launch(_spec(spot=True))
    (raw,) = _instances(ec2, **{"instance-id": [machine.id]})
    assert machine.spot and raw["InstanceLifecycle"] == "spot" and machine.zone == ZONES[0]
    assert proxy.refused == []


def test_on_demand_after_spot_capacity_errors_in_every_zone(proxied):
    proxy, machines, ec2, _ = proxied
    proxy.refuse(instance_type=TYPE, spot=True)
    machine = machines.launch(_spec(spot=True))
    assert not machine.spot and machine.zone == ZONES[0]
    assert proxy.refused == [(zone, TYPE, True) for zone in ZONES]  # cheapest first: spot everywhere
    (raw,) = _instances(ec2, **{"instance-id": [machine.id]})
    assert "InstanceLifecycle" not in raw


def test_the_next_zone_after_a_zone_capacity_error(proxied):
    proxy, machines, ec2, private = proxied
    proxy.refuse(zone=ZONES[0])
    machine = machines.launch(_spec())
    assert machine.zone == ZONES[1]
    (raw,) = _instances(ec2, **{"instance-id": [machine.id]})
    assert raw["SubnetId"] == private[ZONES[1]]
    assert proxy.refused == [(ZONES[0], TYPE, False)]


def test_every_zone_and_market_refused_is_a_clear_error_and_launches_nothing(proxied):
    proxy, machines, ec2, _ = proxied
    proxy.refuse(instance_type=TYPE)
    with pytest.raises(MachinesError) as refused:
        machines.launch(_spec(spot=True))
    message = str(refused.value)
    assert "oceanlab-c0ffee-w-1" in message and TEMPLATE in message
    for market in ("spot", "on-demand"):
        for zone in ZONES:
            assert f"{market} in {zone} (InsufficientInstanceCapacity)" in message
    assert len(proxy.refused) == 2 * len(ZONES)
    assert _instances(ec2, **{"tag:platform": [PLATFORM]}) == []


def test_an_error_that_is_not_about_capacity_stops_at_once(proxied):
    proxy, machines, _, _ = proxied
    with pytest.raises(MachinesError, match="run_instances failed"):
        machines.launch(_spec(template="no-such-template"))
    assert proxy.refused == []


def test_a_batch_is_one_request_and_moves_to_the_next_zone_whole(proxied):
    proxy, machines, ec2, _ = proxied
    proxy.refuse(zone=ZONES[0])
    batch = machines.launch_batch(_spec(count=3))
    assert len(batch) == 3 and len({m.id for m in batch}) == 3
    assert {m.zone for m in batch} == {ZONES[1]}
    raws = _instances(ec2, **{"instance-id": [m.id for m in batch]})
    assert len({r["ClientToken"] for r in raws}) == 1  # one RunInstances
    reservations = ec2.describe_instances(InstanceIds=[m.id for m in batch])["Reservations"]
    assert len(reservations) == 1
    assert proxy.refused == [(ZONES[0], TYPE, False)]  # the whole batch refused once, not per machine
    with pytest.raises(ValueError, match="launch_batch"):
        machines.launch(_spec(count=2))


def test_list_by_tags_and_terminate(cloud):
    moto, _, _ = cloud
    machines = AWSMachines(region=moto.region, endpoint_url=moto.url, platform=PLATFORM)
    mine = machines.launch_batch(_spec(count=2))
    theirs = machines.launch(_spec(name="oceanlab-beef-w-1", tags={**TAGS, "cluster": "beef"}))
    listed = machines.list({"platform": PLATFORM, "cluster": "c0ffee"})
    assert {m.id for m in listed} == {m.id for m in mine}
    assert {m.id for m in machines.list({"platform": PLATFORM})} == {*(m.id for m in mine), theirs.id}

    machines.terminate([m.id for m in mine])
    assert machines.list({"platform": PLATFORM, "cluster": "c0ffee"}) == []
    assert all(not m.alive for m in machines.describe([m.id for m in mine]).values())
    assert machines.describe([theirs.id])[theirs.id].alive
    machines.terminate([])  # nothing to do, no request


def test_describe_asks_for_at_most_200_ids_at_a_time(cloud):
    moto, _, _ = cloud
    machines = AWSMachines(region=moto.region, endpoint_url=moto.url, platform=PLATFORM)
    batch = machines.launch_batch(_spec(count=201))
    sizes = []
    machines.ec2.meta.events.register(
        "before-parameter-build.ec2.DescribeInstances",
        lambda params, **_: sizes.append(len(params["Filters"][0]["Values"])))
    found = machines.describe([m.id for m in batch] + ["i-0123456789abcdef0"])
    assert set(found) == {m.id for m in batch} and sizes == [200, 2]
    assert machines.describe([]) == {} and sizes == [200, 2]


def test_the_dead_man_switch_goes_in_front_of_the_machine_user_data(cloud):
    moto, ec2, _ = cloud
    machines = AWSMachines(region=moto.region, endpoint_url=moto.url, platform=PLATFORM)
    deadman = DeadMan("http://10.20.0.5:8000/services/dask-gateway/api/health", after_seconds=600)
    machine = machines.launch(_spec(deadman=deadman))
    answer = ec2.describe_instance_attribute(InstanceId=machine.id, Attribute="userData")
    script = base64.b64decode(answer["UserData"]["Value"]).decode()
    assert script.startswith("#!/bin/sh\n")
    assert script.index("systemctl enable --now graticule-deadman.service") < script.index("exec /var/lib/graticule")
    assert f"{deadman.hub_url} 600 30" in script
    carried = base64.b64encode(_spec().user_data.encode()).decode()
    assert f"echo {carried} | base64 -d" in script


def test_subnets_given_or_missing(cloud):
    moto, _, private = cloud
    given = AWSMachines(region=moto.region, endpoint_url=moto.url, subnets={ZONES[2]: private[ZONES[2]]})
    assert given.launch(_spec()).zone == ZONES[2]
    nowhere = AWSMachines(region=moto.region, endpoint_url=moto.url, platform="no-such-platform")
    for _ in range(2):  # and again: a failed lookup is not remembered as "no subnets"
        with pytest.raises(MachinesError, match="no private subnets tagged platform=no-such-platform"):
            nowhere.launch(_spec())


@contextlib.contextmanager
def _unreliable(moto, plan: list[str]):
    """An endpoint in front of moto that spoils the next RunInstances per `plan`: "lost" reaches
    moto (which launches) but its answer becomes EC2's 503 ServiceUnavailable; "throttled" is
    answered 503 RequestLimitExceeded without reaching moto. Yields (url, ClientTokens seen)."""
    target, tokens = urlparse(moto.url), []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            spoil = plan.pop(0) if form.get("Action") == "RunInstances" and plan else None
            if form.get("Action") == "RunInstances":
                tokens.append(form.get("ClientToken"))
            if spoil != "throttled":
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                connection.request("POST", self.path, body=body, headers=headers)
                response = connection.getresponse()
                status, payload = response.status, response.read()
                connection.close()
            if spoil:
                code = "RequestLimitExceeded" if spoil == "throttled" else "ServiceUnavailable"
                status = 503
                payload = (f"<Response><Errors><Error><Code>{code}</Code><Message>try again</Message></Error>"
                           "</Errors><RequestID>x</RequestID></Response>").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", tokens
    finally:
        server.shutdown()
        server.server_close()


def test_a_launch_whose_answer_was_lost_is_found_not_repeated(cloud):
    moto, ec2, _ = cloud
    with _unreliable(moto, ["lost"]) as (url, tokens):
        machine = AWSMachines(region=moto.region, endpoint_url=url, platform=PLATFORM).launch(_spec())
    assert len(tokens) == 1  # not sent again: the launch had happened
    assert [i["InstanceId"] for i in _instances(ec2, **{"tag:Name": [_spec().name]})] == [machine.id]


def test_a_throttled_launch_is_sent_again_with_the_same_client_token(cloud):
    moto, ec2, _ = cloud
    with _unreliable(moto, ["throttled", "throttled"]) as (url, tokens):
        machine = AWSMachines(region=moto.region, endpoint_url=url, platform=PLATFORM).launch(_spec())
    assert len(tokens) == 3 and len(set(tokens)) == 1
    assert [i["InstanceId"] for i in _instances(ec2, **{"tag:Name": [_spec().name]})] == [machine.id]
    with _unreliable(moto, ["throttled"] * 3) as (url, tokens), pytest.raises(MachinesError, match="RequestLimit"):
        AWSMachines(region=moto.region, endpoint_url=url, platform=PLATFORM).launch(_spec(name="w-9"))
    assert len(tokens) == 3
