"""The rendered stack's VPC firewall rules as nftables rules in each instance's namespace.

Ingress as on GCE: a rule applies to an instance its `target_tags` (or
`target_service_accounts`) name, or to every instance when it names none; rules are
evaluated by priority (lower first; at the same priority a deny before an allow); the
implied rule denies the rest; replies to the instance's own connections always come back
(the firewall is stateful). A rule's sources are its `source_ranges` and the current IPs
of the instances carrying its `source_tags` (or running as its
`source_service_accounts`); a rule naming no source at all means 0.0.0.0/0. The metadata
server is always reachable (it is on the instance's loopback here). EGRESS rules are not
modelled (the instances must reach the API forwarders on ports 80-82), nor are disabled
rules applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .nft_ingress import PROTOCOLS, ingress_table, nft_rule

TABLE = "sim_gce_firewall"
_PROTOCOLS = {**PROTOCOLS, "all": None}


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int
    allow: bool
    entries: tuple[tuple[str | None, tuple[str, ...]], ...]  # (nft protocol or None for all, ports)
    source_ranges: tuple[str, ...] = ()
    source_tags: tuple[str, ...] = ()
    source_accounts: tuple[str, ...] = ()
    target_tags: tuple[str, ...] = ()
    target_accounts: tuple[str, ...] = ()

    def applies_to(self, tags: Iterable[str], account: str) -> bool:
        if not self.target_tags and not self.target_accounts:
            return True
        return bool(set(self.target_tags) & set(tags)) or account in self.target_accounts


@dataclass(frozen=True)
class Member:
    """What a firewall rule sees of a running instance."""
    ip: str
    tags: tuple[str, ...]
    account: str


_ACCOUNT_REFERENCE = re.compile(r"\$\{google_service_account\.([\w-]+)\.email\}")


def rules_from_stack(stack: Mapping, project: str) -> list[Rule]:
    """The INGRESS `google_compute_firewall` rules of a rendered `main.tf.json`."""
    resources = stack.get("resource", {})

    def account(reference: str) -> str:
        match = _ACCOUNT_REFERENCE.fullmatch(reference)
        if not match:
            return reference
        return f"{resources['google_service_account'][match.group(1)]['account_id']}@{project}.iam.gserviceaccount.com"

    rules = []
    for raw in resources.get("google_compute_firewall", {}).values():
        if raw.get("direction", "INGRESS") != "INGRESS" or raw.get("disabled"):
            continue
        allow = "allow" in raw
        entries = tuple((_PROTOCOLS.get(str(e["protocol"]).lower(), "unknown"), tuple(map(str, e.get("ports", []))))
                        for e in raw.get("allow" if allow else "deny", []))
        rules.append(Rule(
            name=raw["name"], priority=int(raw.get("priority", 1000)), allow=allow,
            entries=tuple(e for e in entries if e[0] != "unknown"),  # other IP protocols never occur here
            source_ranges=tuple(raw.get("source_ranges", ())), source_tags=tuple(raw.get("source_tags", ())),
            source_accounts=tuple(account(a) for a in raw.get("source_service_accounts", ())),
            target_tags=tuple(raw.get("target_tags", ())),
            target_accounts=tuple(account(a) for a in raw.get("target_service_accounts", ()))))
    return rules


def _sources(rule: Rule, members: Iterable[Member]) -> list[str]:
    if not (rule.source_ranges or rule.source_tags or rule.source_accounts):
        return ["0.0.0.0/0"]
    ips = {m.ip for m in members if set(m.tags) & set(rule.source_tags) or m.account in rule.source_accounts}
    return [*rule.source_ranges, *sorted(ips)]


def ingress_rules(rules: Iterable[Rule], tags: Iterable[str], account: str, members: Iterable[Member]) -> list[str]:
    """The nft rules, in evaluation order, for an instance with these tags and account."""
    tags, members = tuple(tags), tuple(members)
    ordered = sorted((r for r in rules if r.applies_to(tags, account)), key=lambda r: (r.priority, r.allow, r.name))
    lines = []
    for rule in ordered:
        verdict = "accept" if rule.allow else "drop"
        for source in _sources(rule, members):
            for protocol, ports in rule.entries:
                lines.append(nft_rule(source, protocol, f"{{ {', '.join(ports)} }}" if ports else "", verdict))
    return lines


def ruleset(rules: Iterable[Rule], tags: Iterable[str], account: str, members: Iterable[Member]) -> str:
    """A complete nft script replacing the table (idempotent: apply it again on any change)."""
    return ingress_table(TABLE, ingress_rules(rules, tags, account, members))
