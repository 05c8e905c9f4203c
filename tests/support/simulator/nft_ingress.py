"""What both clouds' firewalls (security_groups.py for EC2, gce_firewall.py for GCE) write into
an instance's namespace: an nftables table whose input chain drops whatever no rule accepts,
except replies to the instance's own connections, loopback and ARP. The clouds differ in
which rules apply to an instance and in what order; the rules' shape is the same."""

from __future__ import annotations

from collections.abc import Iterable

# IP protocols by name or number, as nft names them; others never occur between simulated instances.
PROTOCOLS = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp"}


def nft_rule(source: str, protocol: str | None, ports: str, verdict: str) -> str:
    """`ports`: an nft port expression (`443`, `8000-8999`, `{ 22, 443 }`) or "" for any;
    `protocol` None: every protocol."""
    match = f"ip saddr {source}"
    if protocol is not None:
        match += f" meta l4proto {protocol}"
        if ports and protocol in ("tcp", "udp"):
            match += f" {protocol} dport {ports}"
    return f"{match} {verdict}"


def ingress_table(table: str, rules: Iterable[str]) -> str:
    """A complete nft script replacing the table (idempotent: apply it again on any change)."""
    body = "\n".join(f"    {rule}" for rule in rules)
    return (
        f"table inet {table}\n"
        f"delete table inet {table}\n"
        f"table inet {table} {{\n"
        "  chain ingress {\n"
        "    type filter hook input priority 0; policy drop;\n"
        "    ct state established,related accept\n"
        '    iifname "lo" accept\n'
        "    meta protocol arp accept\n"
        f"{body}\n"
        "  }\n"
        "}\n"
    )
