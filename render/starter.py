"""The commented starter platform.yaml that `platform init` writes (pure text)."""

from __future__ import annotations

_HEADER = """\
# platform.yaml: the one file that describes this data-science platform.
# Edit it, open a pull request, and CI validates, renders and plans it; merging applies it.
# `platform validate` checks it locally; `platform schema` gives editors its JSON Schema.

apiVersion: graticule/v2
name: {name}                    # DNS-safe: lower-case letters, digits and '-', 2..31 chars
target: {target}                # local | aws | gcp: where `platform apply` puts the platform
"""

_CLOUD = {
    "local": "",
    "aws": """
cloud:
  aws:
    region: us-west-2
    account_id: "123456789012"  # quoted: your 12-digit AWS account
    vpc_cidr: 10.40.0.0/16
    zones: 2                    # private subnets spread over this many availability zones
    egress: nat                 # nat | none (no internet at all: VPC endpoints only)
    state_bucket: {name}-tfstate  # created by `platform bootstrap`
""",
    "gcp": """
cloud:
  gcp:
    project: {name}-prod
    region: us-central1
    vpc_cidr: 10.50.0.0/16
    egress: nat                 # nat | none
    state_bucket: {name}-tfstate  # created by `platform bootstrap`
""",
}

_AUTH = {
    "local": """\
  auth:
    provider: local             # users below log in with a password set on first login
""",
    "aws": """\
  auth:
    provider: github            # github | oidc | local
    github:
      org: {name}
      client_id: Iv1.0000000000000000   # the client secret comes from the secret store, never this file
""",
}
_AUTH["gcp"] = _AUTH["aws"]

_INSTANCE = {
    "local": ("", ""),
    "aws": ("  instance: { aws: t3.large }\n", "    instance: { aws: m6i.large }\n"),
    "gcp": ("  instance: { gcp: e2-standard-2 }\n", "    instance: { gcp: n2-standard-2 }\n"),
}

_BODY = """
hub:
{auth}{hub_instance}  default_profile: small
  idle_timeout: 1h              # idle notebook servers are stopped after this

groups:
  admins:
    admin: true
  researchers:
    budget: research
    profiles: [small]
    environments: [default]

users:
  - name: admin
    groups: [admins, researchers]

budgets:
  research:
    monthly_usd: 100
    max_cores: 32               # cores this budget's users may hold at once
    alerts: [50, 80, 100]       # percent of monthly_usd
    on_exhausted: stop          # stop | block_new | warn

profiles:                       # hardware for notebook servers and Dask workers alike
  small:
    cpu: 2
    memory: 8GiB
{profile_instance}
dask:
  default_profile: small
  max_workers: 20               # per cluster
  idle_timeout: 20m
  max_lifetime: 24h

environments:
  default:
    python: "3.11"
    packages:
      - dask[distributed]==2026.8.0
      - numpy
"""


def starter_yaml(name: str, target: str) -> str:
    hub_instance, profile_instance = _INSTANCE[target]
    text = _HEADER + _CLOUD[target] + _BODY
    return text.format(
        name=name,
        target=target,
        auth=_AUTH[target].format(name=name),
        hub_instance=hub_instance,
        profile_instance=profile_instance,
    )
