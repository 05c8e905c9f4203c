"""Security groups to nft rules (pure; the simulator tests show the rules filter for real)."""

from __future__ import annotations

from tests.support.simulator.security_groups import ingress_rules, ruleset

WEB = {"GroupId": "sg-web", "IpPermissions": [
    {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "UserIdGroupPairs": [{"GroupId": "sg-lb"}],
     "IpRanges": []},
    {"IpProtocol": "tcp", "FromPort": 8786, "ToPort": 8790, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]},
]}
ANY = {"GroupId": "sg-any", "IpPermissions": [
    {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-any"}]},
    {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    {"IpProtocol": "50", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
]}


def test_source_groups_become_member_ips_and_port_ranges_stay_ranges():
    rules = ingress_rules([WEB], {"sg-lb": ["172.31.0.9", "172.31.0.5"]})
    assert rules == [
        "ip saddr 172.31.0.5 meta l4proto tcp tcp dport 8000 accept",
        "ip saddr 172.31.0.9 meta l4proto tcp tcp dport 8000 accept",
        "ip saddr 10.0.0.0/16 meta l4proto tcp tcp dport 8786-8790 accept",
    ]


def test_all_traffic_icmp_and_unknown_protocols():
    rules = ingress_rules([ANY], {"sg-any": ["172.31.0.7"]})
    assert rules == ["ip saddr 172.31.0.7 accept", "ip saddr 0.0.0.0/0 meta l4proto icmp accept"]


def test_group_without_members_admits_nothing_and_default_is_drop():
    script = ruleset([WEB], {})
    assert "tcp dport 8000" not in script
    assert "policy drop;" in script and "ct state established,related accept" in script
    # Replaces the table on re-apply rather than adding to it.
    assert script.index("delete table inet sim_security_groups") < script.index("chain ingress")
