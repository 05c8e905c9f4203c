"""What the cloud e2e modules (tests/test_{aws,gcp}_*_e2e.py) share, on the session's
`aws_platform` (tests/support/aws_platform.py) or `gcp_platform` (tests/support/gcp_platform.py):
waiting, the hub VM's sandbox, the gateway's health through the load balancer, the
platform's environments made tiny, and each cloud's instances of a cluster with the
diagnosis a failing test prints.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from tests.support.bootstrap import NAME
from tests.support.laptop import on_laptop

if TYPE_CHECKING:
    from tests.support.aws_platform import AwsPlatform
    from tests.support.gcp_platform import GcpPlatform

WAIT = 900  # seconds for machines to boot and connect on a shared machine
TINY = '    packages: ["dask[distributed]==2026.8.0"]\n'  # the platform's pins and ipykernel come with it
EC2_GONE = ("terminated", "shutting-down")
GCE_GONE = ("STOPPING", "TERMINATED", "SUSPENDED")


def eventually(check: Callable[[], Any], timeout: float, message: Callable[[], str],
               ignoring: tuple[type[Exception], ...] = ()) -> Any:
    """`check`'s first truthy answer within `timeout` seconds; else an AssertionError with
    `message()`. A check that raises one of `ignoring` (a hub restarting) counts as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if found := check():
                return found
        except ignoring:
            pass
        time.sleep(2)
    raise AssertionError(message())


def tiny_environments(text: str) -> str:
    """Every environment of platform.yaml with the platform's own packages only."""
    start = text.index("\nenvironments:\n")
    end = re.search(r"\n\S", text[start + 1:]).start() + start + 1
    block = re.sub(r"    packages:\n(      - [^\n]*\n)+", TINY, text[start:end])
    return text[:start] + block + text[end:]


def hub_box(platform: AwsPlatform | GcpPlatform):
    """The sandbox the hub VM runs in (on GCP the instance's latest boot)."""
    if hasattr(platform.sim, "booted"):
        return platform.sim.booted(platform.hub_instance())[-1]
    return platform.sim.sandboxes[platform.hub_instance()]


def gateway_up(platform: AwsPlatform | GcpPlatform) -> bool:
    """The gateway answers through the load balancer and the hub's proxy."""
    try:
        return requests.get(f"{platform.front}/services/dask-gateway/api/health", timeout=10).ok
    except requests.RequestException:
        return False


def wait_for_published_environments(platform: AwsPlatform | GcpPlatform) -> None:
    """Until the hub's config sync installed the applied configuration (the environments'
    keys), and the gateway it may have restarted answers again. After a settled apply both
    hold at once: config sync logs "applied" only after its restarts (hub_settle.py)."""
    def installed() -> bool:
        found = hub_box(platform).exec(["cat", "/var/lib/graticule/build/environments/wheels.json"])
        return found.returncode == 0 and '"default"' in found.stdout

    _eventually_or_diagnose(platform, installed, "the hub never installed the environments' keys")
    _eventually_or_diagnose(platform, lambda: gateway_up(platform), "the gateway did not answer")


def _eventually_or_diagnose(platform: AwsPlatform | GcpPlatform, check: Callable[[], Any], what: str) -> None:
    eventually(check, 300, lambda: f"{what}\n" + platform.diagnose(platform.hub_instance()))


@contextlib.contextmanager
def environments_applied(platform: AwsPlatform | GcpPlatform, text: str, wheels: Path,
                         revert: Callable[[], bool] = lambda: True, **env: str) -> Iterator[AwsPlatform | GcpPlatform]:
    """`text` locked offline from the wheels in `wheels` and applied (apply publishes the
    environments' wheels), until the hub installed them; the original platform after. When
    `revert()` says no (nothing uses the platform again but its destroy), the original
    platform.yaml is only written back, not applied."""
    original = platform.text
    lock = platform.root / "environments.lock"
    (platform.root / "platform.yaml").write_text(text)
    empty_index = platform.root / "empty-index"  # uv reads no UV_NO_INDEX: an index with nothing in it
    empty_index.mkdir(exist_ok=True)
    offline = {"UV_FIND_LINKS": str(wheels), "UV_INDEX_URL": empty_index.as_uri(), "UV_OFFLINE": "1", **env}
    saved = {key: platform.env.get(key) for key in offline}
    try:
        platform.env.update(offline)
        platform.cli("lock")
        platform.apply(text)
        wait_for_published_environments(platform)
        yield platform
    finally:
        for key, value in saved.items():
            if value is None:
                platform.env.pop(key, None)
            else:
                platform.env[key] = value
        lock.unlink(missing_ok=True)
        if revert():
            platform.apply(original)
        else:
            (platform.root / "platform.yaml").write_text(original)
            platform.text = original


def laptop_steps(platform: AwsPlatform | GcpPlatform, python: Path, config: Path) -> Callable[..., dict]:
    """`step(*args, stdin="")`: one laptop client step against the platform's schedulers."""
    here = {"GRATICULE_GATEWAY_SCHEDULER_URL": platform.scheduler, "LAPTOP_WAIT": str(WAIT)}

    def step(*args: str, stdin: str = "") -> dict:
        return on_laptop(python, config, *args, stdin=stdin, **here)

    return step


# -- AWS: EC2 instances in moto, booted by the machine simulator ------------------------------

def aws_instances(platform: AwsPlatform, cluster: str | None = None, **tags: str) -> list[dict]:
    """The platform's instances with these tags (`cluster` among them), not terminated."""
    wanted = {"platform": NAME, **tags, **({"cluster": cluster} if cluster else {})}
    filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in wanted.items()]
    found = platform.server.client("ec2").describe_instances(Filters=filters)
    return [i for r in found["Reservations"] for i in r["Instances"] if i["State"]["Name"] not in EC2_GONE]


def aws_tags(instance: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def aws_diagnosis(platform: AwsPlatform, cluster: str | None) -> str:
    """The hub's logs and the consoles of the cluster's instances."""
    parts = [platform.diagnose(platform.hub_instance())[-8000:]]
    for instance in aws_instances(platform, cluster) if cluster else []:
        parts.append(platform.diagnose(instance["InstanceId"])[-4000:])
    return "\n".join(parts)


# -- GCP: Compute Engine instances in the fake Compute API, booted by the GCE simulator -------

def gcp_instances(platform: GcpPlatform, cluster: str | None = None, **labels: str) -> list[dict]:
    """The platform's instances with these labels (`cluster` among them), not stopping or gone."""
    wanted = {"platform": NAME, **labels, **({"cluster": cluster} if cluster else {})}
    return [i for i in platform.compute.instances() if i.get("status") not in GCE_GONE
            and all((i.get("labels") or {}).get(key) == value for key, value in wanted.items())]


def gcp_diagnosis(platform: GcpPlatform, cluster: str | None = None) -> str:
    """The hub's logs and the consoles of the cluster's instances (every launched one when None)."""
    parts = [platform.diagnose(platform.hub_instance())[-12000:]]
    for instance in platform.compute.instances():
        labels = instance.get("labels") or {}
        if labels.get("role") in ("scheduler", "worker") and cluster in (None, labels.get("cluster")):
            parts.append(platform.diagnose(instance["name"])[-4000:])
    return "\n".join(parts)
