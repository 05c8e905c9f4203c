"""Security groups as nftables rules in an instance's namespace.

Ingress as in EC2: nothing comes in unless a rule of one of the instance's groups allows
it (protocol, port range, and a CIDR or a source group, which means the private IPs of
the instances in that group); replies to the instance's own connections always come back.
Egress is left open (EC2's default egress rule); egress rules are not modelled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .nft_ingress import PROTOCOLS, ingress_table, nft_rule

TABLE = "sim_security_groups"


def _ports(permission: Mapping) -> str:
    low, high = permission.get("FromPort"), permission.get("ToPort")
    if low is None or low == -1:
        return ""
    return f"{low}" if low == high else f"{low}-{high}"


def ingress_rules(groups: Iterable[Mapping], ips_by_group: Mapping[str, Iterable[str]]) -> list[str]:
    """One nft rule per (permission, source) of the groups' IpPermissions."""
    rules: list[str] = []
    for group in groups:
        for permission in group.get("IpPermissions", []):
            raw = str(permission.get("IpProtocol", "-1")).lower()
            protocol = PROTOCOLS.get(raw)
            if raw != "-1" and protocol is None:
                continue  # other IP protocols never occur between simulated instances
            sources = [r["CidrIp"] for r in permission.get("IpRanges", [])]
            for pair in permission.get("UserIdGroupPairs", []):
                sources.extend(sorted(ips_by_group.get(pair["GroupId"], ())))
            rules.extend(nft_rule(source, protocol, _ports(permission), "accept") for source in sources)
    return rules


def ruleset(groups: Iterable[Mapping], ips_by_group: Mapping[str, Iterable[str]]) -> str:
    """A complete nft script replacing the table (idempotent: apply it again on any change)."""
    return ingress_table(TABLE, ingress_rules(groups, ips_by_group))
