"""The GCP hub's fixed private address (modules/gcp/hub.py): a static internal address the hub
instance takes, so a replaced hub answers where machines already ask (their dead-man switch,
the worker launcher, the broker). Rendered checks, and the fake Compute API's behaviour the
e2e replacement relies on (tests/support/gce/addresses.py: `networkIP` honoured, a held one
refused, a reserved one never handed to another instance). The replacement itself, booted
by the simulator, is in tests/test_gcp_hub_e2e.py.
"""

from __future__ import annotations

import ipaddress
import json
import re

import pytest
from google.api_core.exceptions import BadRequest
from google.cloud import compute_v1

from modules.gcp.hub import hub_private_ip
from render.terraform_gcp import synthesize_gcp
from tests.support.gce.clients import client, wait
from tests.support.gce.rendered import Rendered
from tests.support.gce.server import running_fake_compute
from tests.support.gce.setup import network, template
from tests.support.terraform import example_platform

REGION, ZONE = "us-central1", "us-central1-a"


@pytest.fixture(scope="module")
def stack() -> dict:
    return json.loads(synthesize_gcp(example_platform("gcp", egress="none")))


def test_the_hub_takes_a_reserved_internal_address_that_gcp_lets_an_instance_have(stack):
    resources = stack["resource"]
    (address,) = resources["google_compute_address"].values()
    hub = resources["google_compute_instance"]["hub"]
    assert hub["network_interface"] == [{"subnetwork": "${google_compute_subnetwork.compute.id}",
                                         "network_ip": "${google_compute_address.hub.address}"}]
    assert (address["address_type"], address["purpose"]) == ("INTERNAL", "GCE_ENDPOINT")
    assert address["subnetwork"] == "${google_compute_subnetwork.compute.id}"
    subnetwork = resources["google_compute_subnetwork"]["compute"]
    assert address["region"] == subnetwork["region"]
    cidr = ipaddress.ip_network(subnetwork["ip_cidr_range"])
    ip = ipaddress.ip_address(address["address"])
    assert ip in cidr and ip not in {cidr[0], cidr[1], cidr[-2], cidr[-1]}  # Google keeps those four
    assert address["address"] == "10.50.255.253"  # the example's 10.50.0.0/16: its last usable address
    assert stack["output"]["hub_private_ip"]["value"] == "${google_compute_address.hub.address}"
    assert json.loads(synthesize_gcp(example_platform("gcp", egress="none"))) == stack  # deterministic


@pytest.mark.parametrize(("cidr", "expected"), [("10.50.0.0/16", "10.50.255.253"), ("10.0.0.0/24", "10.0.0.253"),
                                                ("172.16.0.0/12", "172.31.255.253"), ("10.9.8.0/29", "10.9.8.5")])
def test_the_address_is_the_last_usable_one_of_the_subnetwork(cidr, expected):
    assert hub_private_ip(cidr) == expected


def test_a_replacement_destroys_the_old_hub_first(stack):
    """create_before_destroy on the hub, or on anything referring to it (Terraform then applies
    it to the hub too), would create the new hub while the old one holds the address."""
    resources = {f"{kind}.{name}": body for kind, named in stack["resource"].items() for name, body in named.items()}
    referring = {address for address, body in resources.items()
                 if re.search(r"\bgoogle_compute_instance\.hub\.", json.dumps(body))}
    assert referring == {"google_compute_instance_group.hub"}  # the load balancer's backend
    for address in {"google_compute_instance.hub", "google_compute_address.hub", *referring}:
        assert not resources[address].get("lifecycle", {}).get("create_before_destroy"), address


@pytest.fixture
def compute():
    with running_fake_compute() as fake:
        network(fake, {REGION: "10.20.0.0/29"})  # room for four instances: .2 to .5
        yield fake


def _insert(fake, name: str, ip: str | None = None):
    nic = compute_v1.NetworkInterface(subnetwork=f"projects/{fake.project}/regions/{REGION}/subnetworks/private",
                                      **({"network_i_p": ip} if ip else {}))
    request = compute_v1.InsertInstanceRequest(
        project=fake.project, zone=ZONE, source_instance_template=template_of(fake),
        instance_resource=compute_v1.Instance(name=name, network_interfaces=[nic]))
    return wait(fake, client(fake, "InstancesClient").insert(request=request))


def template_of(fake) -> str:
    if "small" not in fake.store.templates:
        template(fake, "small", "e2-standard-2")
    return f"projects/{fake.project}/global/instanceTemplates/small"


def _ip(fake, name: str) -> str:
    return client(fake, "InstancesClient").get(project=fake.project, zone=ZONE, instance=name) \
        .network_interfaces[0].network_i_p


def _address(fake, name: str) -> compute_v1.Address:
    return client(fake, "AddressesClient").get(project=fake.project, region=REGION, address=name)


def test_the_fake_honours_an_asked_for_address_and_refuses_a_held_one(compute):
    _insert(compute, "a", "10.20.0.4")
    assert _ip(compute, "a") == "10.20.0.4"
    with pytest.raises(RuntimeError, match="IP_IN_USE_BY_ANOTHER_RESOURCE"):  # the insert's operation fails
        _insert(compute, "b", "10.20.0.4")
    assert [i["name"] for i in compute.instances()] == ["a"]
    for outside in ("10.20.0.1", "10.20.0.6", "10.20.0.9"):  # the gateway, a kept one, outside the range
        with pytest.raises(BadRequest, match="outside the subnetwork"):
            _insert(compute, "c", outside)
    _insert(compute, "d")  # an ephemeral address: not the held one
    assert _ip(compute, "d") == "10.20.0.2"
    wait(compute, client(compute, "InstancesClient").delete(project=compute.project, zone=ZONE, instance="a"))
    _insert(compute, "b", "10.20.0.4")  # free again once its holder is deleted
    assert _ip(compute, "b") == "10.20.0.4"


def test_a_reserved_address_goes_to_the_instance_that_asks_for_it_only(compute):
    addresses = client(compute, "AddressesClient")
    subnetwork = f"projects/{compute.project}/regions/{REGION}/subnetworks/private"
    wait(compute, addresses.insert(project=compute.project, region=REGION, address_resource=compute_v1.Address(
        name="hub-internal", address_type="INTERNAL", purpose="GCE_ENDPOINT", subnetwork=subnetwork,
        address="10.20.0.2")))
    reserved = _address(compute, "hub-internal")
    assert (reserved.address, reserved.status, list(reserved.users)) == ("10.20.0.2", "RESERVED", [])
    _insert(compute, "worker-1")
    _insert(compute, "worker-2")
    assert {_ip(compute, "worker-1"), _ip(compute, "worker-2")} == {"10.20.0.3", "10.20.0.4"}  # not .2

    _insert(compute, "hub", "10.20.0.2")
    in_use = _address(compute, "hub-internal")
    assert in_use.status == "IN_USE" and [u.rsplit("/", 1)[1] for u in in_use.users] == ["hub"]
    with pytest.raises(BadRequest, match="already being used"):  # Terraform destroys the hub first
        addresses.delete(project=compute.project, region=REGION, address="hub-internal")
    with pytest.raises(RuntimeError, match="IP_IN_USE_BY_ANOTHER_RESOURCE"):  # another address on it
        wait(compute, addresses.insert(project=compute.project, region=REGION, address_resource=compute_v1.Address(
            name="other", address_type="INTERNAL", subnetwork=subnetwork, address="10.20.0.2")))

    # the hub replaced: delete, then insert asking the same address
    wait(compute, client(compute, "InstancesClient").delete(project=compute.project, zone=ZONE, instance="hub"))
    assert _address(compute, "hub-internal").status == "RESERVED"
    _insert(compute, "hub", "10.20.0.2")
    assert _ip(compute, "hub") == "10.20.0.2"


def test_the_rendered_hub_is_created_in_the_fake_at_its_fixed_address(stack):
    with running_fake_compute(stack["provider"]["google"][0]["project"]) as fake:
        rendered = Rendered(fake, stack)
        rendered.create()
        hub = dict(stack["resource"]["google_compute_instance"]["hub"])
        hub.pop("attached_disk")  # the state disk: tests/support/gcp_hub.py attaches it
        zone = rendered.create_instance(hub)
        found = client(fake, "InstancesClient").get(project=fake.project, zone=zone, instance=hub["name"])
        assert found.network_interfaces[0].network_i_p == "10.50.255.253"
        (address,) = stack["resource"]["google_compute_address"].values()
        held = client(fake, "AddressesClient").get(project=fake.project, region=address["region"],
                                                   address=address["name"])
        assert held.status == "IN_USE" and held.address == "10.50.255.253"
