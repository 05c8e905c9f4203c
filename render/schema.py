"""The platform.yaml schema as pydantic v2 models.

Models are strict (no silent type coercion), frozen (render gets an immutable value) and
forbid unknown keys. Units are parsed on the way in: memory to bytes, durations to
seconds. Cross-references between sections live in `render.checks`, not here, so that
they can be reported all at once even when a section fails to parse.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from packaging.requirements import InvalidRequirement, Requirement
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from render import cron, units

API_VERSION = "graticule/v2"  # v2 adds `jobs:`; v1 files stay valid (render/upgrade.py)
SUPPORTED_VERSIONS = ("graticule/v1", API_VERSION)
Target = Literal["local", "aws", "gcp"]
CLOUD_TARGETS: tuple[str, ...] = ("aws", "gcp")


def _cidr(text: object) -> str:
    if not isinstance(text, str):
        raise ValueError(f"expected a CIDR block such as '10.40.0.0/16', got {text!r}")
    try:
        network = ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an IPv4 CIDR block ({exc})") from None
    if not 16 <= network.prefixlen <= 24:
        raise ValueError(f"a VPC needs a prefix between /16 and /24, got /{network.prefixlen}")
    if not network.is_private:
        raise ValueError(f"{text!r} is not a private range (use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)")
    return str(network)


def _requirement(text: str) -> str:
    try:
        Requirement(text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]  # packaging adds a caret diagram on later lines
        raise ValueError(f"{text!r} is not a PEP 508 requirement: {reason}") from None
    return text


Name = Annotated[str, Field(pattern=units.IDENTIFIER_PATTERN, description="lower-case name")]
DnsName = Annotated[
    str,
    Field(pattern=units.DNS_NAME_PATTERN, description="lower-case letters, digits and '-', 2..31 chars"),
]
Memory = Annotated[
    int,
    BeforeValidator(units.parse_memory),
    WithJsonSchema({"type": "string", "pattern": units.MEMORY_PATTERN, "examples": ["8GiB"]}),
]
Duration = Annotated[
    int,
    BeforeValidator(units.parse_duration),
    WithJsonSchema({"type": "string", "pattern": units.DURATION_PATTERN, "examples": ["20m", "1h"]}),
]
Cidr = Annotated[
    str,
    BeforeValidator(_cidr),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d+\.\d+\.\d+/\d+$"}),
]
PackageRequirement = Annotated[str, Field(min_length=1), AfterValidator(_requirement)]
BucketName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Egress = Literal["nat", "none"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class AwsCloud(Strict):
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    account_id: str = Field(pattern=r"^\d{12}$", description="12-digit account id, quoted")
    vpc_cidr: Cidr
    zones: int = Field(default=2, ge=1, le=6)
    egress: Egress = "nat"
    state_bucket: BucketName


class GcpCloud(Strict):
    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    region: str = Field(pattern=r"^[a-z]+-[a-z]+\d$")
    vpc_cidr: Cidr
    egress: Egress = "nat"
    state_bucket: BucketName


class Cloud(Strict):
    aws: AwsCloud | None = None
    gcp: GcpCloud | None = None


class InstanceTypes(Strict):
    """Machine type per cloud; only the target's entry is required."""

    aws: str | None = Field(default=None, pattern=r"^[a-z0-9]+[a-z0-9-]*\.[a-z0-9]+$")
    gcp: str | None = Field(default=None, pattern=r"^[a-z0-9]+(-[a-z0-9]+)+$")


class GithubAuth(Strict):
    org: str = Field(min_length=1)
    client_id: str = Field(min_length=1)


class OidcAuth(Strict):
    issuer: str = Field(pattern=r"^https://\S+$")
    client_id: str = Field(min_length=1)
    username_claim: str = "preferred_username"


class Auth(Strict):
    provider: Literal["github", "oidc", "local"]
    github: GithubAuth | None = None
    oidc: OidcAuth | None = None


class Hub(Strict):
    domain: str | None = Field(default=None, pattern=r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$")
    auth: Auth
    instance: InstanceTypes = InstanceTypes()
    default_profile: Name
    idle_timeout: Duration = 3600


class Group(Strict):
    admin: bool = False
    budget: Name | None = None
    profiles: list[Name] = []
    environments: list[Name] = []


class User(Strict):
    name: Name
    email: Email | None = None
    groups: list[Name] = []
    budget: Name | None = None


class Budget(Strict):
    monthly_usd: float = Field(gt=0)
    max_cores: int | None = Field(default=None, gt=0)
    alerts: list[Annotated[int, Field(ge=1, le=100)]] = []
    on_exhausted: Literal["stop", "block_new", "warn"] = "stop"


class Gpu(Strict):
    count: int = Field(ge=1)
    type: str = Field(min_length=1, pattern=r"^[a-z0-9-]+$")


class Profile(Strict):
    cpu: int = Field(gt=0, le=1024)
    memory: Memory
    instance: InstanceTypes = InstanceTypes()
    spot: bool = False
    gpu: Gpu | None = None
    price_per_hour_usd: float | None = Field(default=None, ge=0)


class Dask(Strict):
    default_profile: Name
    max_workers: int = Field(default=100, ge=1, le=10_000)
    idle_timeout: Duration = 1200
    max_lifetime: Duration = 86400


class Environment(Strict):
    python: str = Field(pattern=r"^3\.\d{1,2}$", description="Python minor version, quoted: '3.11'")
    packages: list[PackageRequirement] = Field(min_length=1)


class Ci(Strict):
    provider: Literal["github"] = "github"
    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    runner: Literal["github-hosted", "self-hosted"] = "github-hosted"


class Storage(Strict):
    name: Name
    bucket: BucketName
    existing: bool = False
    access: dict[Name, Literal["read", "read-write"]] = {}


class Logs(Strict):
    retention_days: int = Field(default=30, ge=1, le=3653)


class Alerts(Strict):
    email: list[Email] = []


class Integrations(Strict):
    storage: list[Storage] = []
    logs: Logs = Logs()
    alerts: Alerts = Alerts()


class JobRun(Strict):
    """What a job runs: exactly one of `script` or `notebook`, a path in the owner's home
    or, with `repository`, in that git repository at `ref`."""

    script: str | None = Field(default=None, min_length=1)
    notebook: str | None = Field(default=None, min_length=1, pattern=r"\.ipynb$")
    repository: str | None = Field(default=None, pattern=r"^(https://|ssh://|git@|file://)\S+$")
    ref: str | None = Field(default=None, min_length=1)
    parameters: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str | int | float | bool] = {}


class JobSchedule(Strict):
    cron: Annotated[str, AfterValidator(cron.check_expression)]
    timezone: Annotated[str, AfterValidator(cron.check_timezone)] = "UTC"
    # a slot missed while the platform was down: run it once (the latest), or skip it
    missed: Literal["run_once", "skip"] = "run_once"


class JobCluster(Strict):
    profile: Name | None = None  # default: dask.default_profile
    workers: int | None = Field(default=None, ge=0, le=10_000)
    adaptive: list[Annotated[int, Field(ge=0, le=10_000)]] | None = Field(
        default=None, min_length=2, max_length=2, description="[minimum, maximum] workers"
    )


class Job(Strict):
    owner: Name  # a platform user; their budget pays
    run: JobRun
    schedule: JobSchedule | None = None  # none: run on demand only (`platform jobs run`)
    environment: Name | None = None  # default: the owner's first granted environment
    profile: Name | None = None  # the driver's; default: hub.default_profile
    cluster: JobCluster | None = None
    timeout: Duration = 3600
    retries: int = Field(default=0, ge=0, le=10)
    retry_backoff: Duration = 60  # doubled at each further retry
    notify: list[Email] = []  # told when a run fails for good (the owner's e-mail too)


class Platform(Strict):
    """A whole platform, as declared in platform.yaml."""

    api_version: Literal["graticule/v1", "graticule/v2"] = Field(alias="apiVersion")
    name: DnsName
    target: Target = "local"
    cloud: Cloud = Cloud()
    hub: Hub
    groups: dict[Name, Group]
    users: list[User]
    budgets: dict[Name, Budget] = {}
    profiles: dict[Name, Profile] = Field(min_length=1)
    dask: Dask
    environments: dict[Name, Environment] = Field(min_length=1)
    ci: Ci | None = None
    integrations: Integrations = Integrations()
    jobs: dict[Name, Job] = {}

    def user(self, name: str) -> User | None:
        return next((user for user in self.users if user.name == name), None)


def json_schema() -> dict:
    """JSON Schema of platform.yaml, for editors' YAML language servers."""
    schema = Platform.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://graticule.dev/schema/platform.v1.json"
    schema["title"] = "graticule platform.yaml"
    return schema
