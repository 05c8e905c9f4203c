"""Security groups as nftables rules inside a sandbox's namespace.

Ingress only, as AWS evaluates it: the union of the instance's groups' rules, stateful
(replies to allowed traffic pass), everything else dropped silently (a connection attempt
times out, like on EC2). Egress is left open (the AWS default rule); the VPC itself has
no route out. A named counter counts what the default drop stopped, so a test can tell a
filtered packet from one that never arrived.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from tests.support.simulator.netns import in_netns

TABLE = "graticule_sg"
DROP_COUNTER = "sg_dropped"
_PROTOCOLS = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp"}


def _sources(permission: Mapping, group_members: Mapping[str, Iterable[str]]) -> list[str]:
    sources = [r["CidrIp"] for r in permission.get("IpRanges", [])]
    for pair in permission.get("UserIdGroupPairs", []):
        sources.extend(group_members.get(pair["GroupId"], ()))
    return sorted(set(sources))


def _rule(permission: Mapping, sources: list[str]) -> str | None:
    if not sources:
        return None  # a group with no running members admits nobody yet
    match = f"ip saddr {{ {', '.join(sources)} }}"
    protocol = str(permission.get("IpProtocol", "-1")).lower()
    if protocol in ("-1", "all"):
        return f"{match} accept"
    name = _PROTOCOLS.get(protocol)
    if name is None:
        return f"{match} meta l4proto {protocol} accept"
    if name == "icmp":
        return f"{match} ip protocol icmp accept"
    low, high = permission.get("FromPort", -1), permission.get("ToPort", -1)
    ports = "" if low in (-1, None) else f" {name} dport {low}-{high}"
    return f"{match} meta l4proto {name}{ports} accept"


def ruleset(groups: Iterable[Mapping], group_members: Mapping[str, Iterable[str]]) -> str:
    """The whole table for one instance; `groups` as describe_security_groups returns them."""
    rules = []
    for group in groups:
        for permission in group.get("IpPermissions", []):
            rule = _rule(permission, _sources(permission, group_members))
            if rule:
                rules.append(f"    {rule} comment \"{group['GroupId']}\"")
    body = "\n".join(sorted(set(rules)))
    # add+delete+define in one transaction: the table is replaced atomically.
    return (f"add table inet {TABLE}\ndelete table inet {TABLE}\n"
            f"table inet {TABLE} {{\n  counter {DROP_COUNTER} {{ }}\n"
            f"  chain input {{\n    type filter hook input priority filter; policy drop;\n"
            f"    ct state established,related accept\n    iif \"lo\" accept\n{body}\n"
            f"    counter name \"{DROP_COUNTER}\"\n  }}\n}}\n")


def apply(netns: str, rules: str) -> None:
    in_netns(netns, "nft", "-f", "-", input=rules)


def dropped_packets(netns: str) -> int:
    out = in_netns(netns, "nft", "list", "counter", "inet", TABLE, DROP_COUNTER).stdout
    found = re.search(r"packets (\d+)", out)
    return int(found.group(1)) if found else 0
