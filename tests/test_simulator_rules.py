"""Security groups to nftables rules: the translation alone (no namespaces needed)."""

from __future__ import annotations

from tests.support.simulator.firewall import ruleset


def _group(group_id: str, *permissions: dict) -> dict:
    return {"GroupId": group_id, "IpPermissions": list(permissions)}


def test_ports_cidrs_and_source_groups_become_accept_rules():
    groups = [
        _group("sg-hub", {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8001,
                          "IpRanges": [{"CidrIp": "10.0.0.0/24"}], "UserIdGroupPairs": [{"GroupId": "sg-lb"}]}),
        _group("sg-dask", {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-dask"}]},
               {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
               {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}),
    ]
    members = {"sg-lb": ["10.0.5.7"], "sg-dask": ["10.0.6.1", "10.0.6.2"]}
    rules = ruleset(groups, members)
    assert 'ip saddr { 10.0.0.0/24, 10.0.5.7 } meta l4proto tcp tcp dport 8000-8001 accept comment "sg-hub"' in rules
    assert 'ip saddr { 10.0.6.1, 10.0.6.2 } accept comment "sg-dask"' in rules
    assert "ip saddr { 0.0.0.0/0 } meta l4proto udp udp dport 53-53 accept" in rules
    assert "ip saddr { 10.1.0.0/16 } ip protocol icmp accept" in rules
    assert "policy drop;" in rules and "ct state established,related accept" in rules
    # Replaced in one transaction, so a re-sync never leaves a window without rules.
    assert rules.startswith("add table inet graticule_sg\ndelete table inet graticule_sg\n")


def test_a_source_group_without_running_members_admits_nobody():
    rules = ruleset([_group("sg-hub", {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                        "UserIdGroupPairs": [{"GroupId": "sg-admin"}]})], {})
    assert "dport 22" not in rules
    assert "accept comment" not in rules


def test_the_same_groups_give_the_same_rules():
    groups = [_group("sg-a", {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "UserIdGroupPairs": [
        {"GroupId": "sg-b"}]})]
    assert ruleset(groups, {"sg-b": ["10.0.0.2", "10.0.0.1"]}) == ruleset(groups, {"sg-b": ["10.0.0.1", "10.0.0.2"]})
