"""Security groups as nftables rules in an instance's namespace.

Ingress as in EC2: nothing comes in unless a rule of one of the instance's groups allows
it (protocol, port range, and a CIDR or a source group, which means the private IPs of
the instances in that group); replies to the instance's own connections always come back.
Egress is left open (EC2's default egress rule); egress rules are not modelled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

TABLE = "sim_security_groups"
_PROTOCOLS = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp"}


def _port_match(protocol: str, permission: Mapping) -> str:
    low, high = permission.get("FromPort"), permission.get("ToPort")
    if protocol not in ("tcp", "udp") or low is None or low == -1:
        return ""
    return f" {protocol} dport {low}" if low == high else f" {protocol} dport {low}-{high}"


def ingress_rules(groups: Iterable[Mapping], ips_by_group: Mapping[str, Iterable[str]]) -> list[str]:
    """One nft rule per (permission, source) of the groups' IpPermissions."""
    rules: list[str] = []
    for group in groups:
        for permission in group.get("IpPermissions", []):
            raw = str(permission.get("IpProtocol", "-1")).lower()
            protocol = _PROTOCOLS.get(raw)
            if raw != "-1" and protocol is None:
                continue  # other IP protocols never occur between simulated instances
            sources = [r["CidrIp"] for r in permission.get("IpRanges", [])]
            for pair in permission.get("UserIdGroupPairs", []):
                sources.extend(sorted(ips_by_group.get(pair["GroupId"], ())))
            for source in sources:
                match = f"ip saddr {source}"
                if protocol is not None:
                    match += f" meta l4proto {protocol}" + _port_match(protocol, permission)
                rules.append(f"{match} accept")
    return rules


def ruleset(groups: Iterable[Mapping], ips_by_group: Mapping[str, Iterable[str]]) -> str:
    """A complete nft script replacing the table (idempotent: apply it again on any change)."""
    body = "\n".join(f"    {rule}" for rule in ingress_rules(groups, ips_by_group))
    return (
        f"table inet {TABLE}\n"
        f"delete table inet {TABLE}\n"
        f"table inet {TABLE} {{\n"
        "  chain ingress {\n"
        "    type filter hook input priority 0; policy drop;\n"
        "    ct state established,related accept\n"
        '    iifname "lo" accept\n'
        "    meta protocol arp accept\n"
        f"{body}\n"
        "  }\n"
        "}\n"
    )
