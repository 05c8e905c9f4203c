"""A laptop through the hub's one front door, end to end (issue 10).

`platform up` on the repository's own platform.yaml; the "laptop" is a separate virtual
environment holding only `distributed`, `dask-gateway` and graticule's SDK, running the
README's laptop steps (tests/support/laptop_client.py) against the hub URL alone:
login (the gateway path and scheduler proxy come from the platform's discovery
document), a cluster that computes, `graticule.clusters()`, the dashboard through the
hub (owner yes, another user no, no session: the hub's login), upstream's
`dask_gateway.Gateway` on the two published addresses, and a notebook in the hub that
reaches the laptop's cluster by name and starts one the laptop then reaches. At the end
`platform down` must leave no process behind (checked by PID).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import chromium, log_in, new_page, screenshot
from tests.support.kernel import run_in_kernel
from tests.support.laptop import on_laptop
from tests.support.local_platform import REPO, LocalPlatform, http, local_platform

pytestmark = pytest.mark.slow

ALICE_PASSWORD = "alice's laptop password"


@pytest.fixture(scope="module")
def lp(tmp_path_factory) -> Iterator[LocalPlatform]:
    with local_platform((REPO / "platform.yaml").read_text(), tmp_path_factory.mktemp("laptop")) as handle:
        yield handle


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("laptop-config")


def published(lp: LocalPlatform) -> tuple[str, str]:
    """The gateway URL and the scheduler address as `platform up` printed them."""
    out = lp.outputs[0]
    gateway = re.search(r"^\s+dask-gateway\s+(\S+)$", out, re.MULTILINE)
    schedulers = re.search(r"^\s+schedulers\s+(\S+)$", out, re.MULTILINE)
    assert gateway and schedulers, out
    return gateway.group(1), schedulers.group(1)


def saved_token(config_dir: Path) -> str:
    return json.loads((config_dir / "credentials.json").read_text())["token"]


def fetch(url: str, token: str | None = None) -> tuple[int, str, str]:
    """(status, final URL, body) of a GET, redirects followed."""
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as answer:
            return answer.status, answer.url, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, url, exc.read().decode(errors="replace")


def test_up_publishes_the_hub_and_one_scheduler_address(lp):
    gateway, schedulers = published(lp)
    assert gateway == f"{lp.hub_url}/services/dask-gateway"
    assert schedulers == f"tls://127.0.0.1:{lp.gateway_port}"
    # The platform's discovery document says the same, publicly, behind the hub.
    document = http("GET", f"{lp.hub_url}/services/platform/discovery.json").json()
    assert document["gateway"] == {"path": "/services/dask-gateway", "scheduler_proxy": schedulers}
    # The gateway's API answers through the hub's proxy (before: the hub's own 403 on _xsrf).
    assert http("GET", f"{gateway}/api/health").json()["status"] == "pass"


def test_laptop_login_learns_the_addresses_from_the_hub(lp, laptop, config_dir):
    saved = on_laptop(laptop, config_dir, "login", lp.hub_url, "alice", stdin=ALICE_PASSWORD + "\n")
    gateway, schedulers = published(lp)
    assert saved == {"gateway_url": gateway, "proxy_address": schedulers, "hub_url": lp.hub_url, "user": "alice"}
    assert (config_dir / "credentials.json").stat().st_mode & 0o777 == 0o600


@pytest.fixture(scope="module")
def laptop_cluster(lp, laptop, config_dir) -> Iterator[dict]:
    """alice's Cluster(profile="small", n_workers=2), started on the laptop."""
    on_laptop(laptop, config_dir, "login", lp.hub_url, "alice", stdin=ALICE_PASSWORD + "\n")
    started = on_laptop(laptop, config_dir, "start")
    yield started
    # Left running on purpose: `platform down` (the last test) must stop it too.


def test_laptop_cluster_computes_and_is_listed(laptop_cluster, lp):
    assert laptop_cluster["sum"] == sum(range(100))
    assert laptop_cluster["workers"] == 2
    listed = {entry["name"]: entry for entry in laptop_cluster["listed"]}
    assert listed[laptop_cluster["name"]]["status"] == "running"
    assert listed[laptop_cluster["name"]]["options"]["profile"] == "small"
    assert laptop_cluster["dashboard_link"] == f"{lp.gateway_url}/clusters/{laptop_cluster['name']}/status"


def test_dashboard_through_the_hub_is_for_its_owner_only(laptop_cluster, lp, config_dir):
    link = laptop_cluster["dashboard_link"]
    status, _, page = fetch(link, saved_token(config_dir))
    assert status == 200, page[:500]
    assert "<title>Dask" in page and "bokeh" in page  # the real Bokeh dashboard, not bokeh's absence
    status, _, page = fetch(link, lp.token("bob"))
    assert status == 403, page[:500]
    assert "Dask" not in page
    # No token, no session: the hub's login page, on the way back to the dashboard.
    status, final, page = fetch(link)
    assert status == 200
    assert final.startswith(f"{lp.hub_url}/hub/login?next=")
    assert "oauth2%2Fauthorize" in final and 'name="password"' in page
    # A callback the gateway did not start (no state of its own, no cookie) gets no session.
    status, _, page = fetch(f"{lp.gateway_url}/oauth_callback?code=forged&state=forged")
    assert status == 403 and "state mismatch" in page


def test_upstream_gateway_reaches_the_cluster_by_name(laptop_cluster, lp, laptop, config_dir):
    gateway, schedulers = published(lp)
    reached = on_laptop(laptop, config_dir, "upstream", laptop_cluster["name"], gateway, schedulers,
                        JUPYTERHUB_API_TOKEN=saved_token(config_dir))
    assert laptop_cluster["name"] in reached["listed"]
    assert reached["sum"] == sum(range(1000))


def test_dashboard_in_a_browser_logs_in_through_the_hub(laptop_cluster, lp):
    link = laptop_cluster["dashboard_link"]
    with chromium() as browser:
        page = new_page(browser, viewport={"width": 1280, "height": 800})
        frames: list[str] = []  # what the dashboard's websockets received, by URL

        def watch(socket) -> None:
            socket.on("framereceived", lambda payload: frames.append(socket.url))

        page.on("websocket", watch)
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.goto(link)
        assert "/hub/login" in page.url, page.url  # no session: the hub's login first
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", ALICE_PASSWORD)
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url(link)  # back through the hub's OAuth to the dashboard itself
        page.wait_for_function("() => document.title.startsWith('Dask')")
        # Bokeh's live updates: a websocket under the cluster's path, through the hub's proxy.
        deadline = time.monotonic() + 120
        while not (any(f"/clusters/{laptop_cluster['name']}/" in url for url in frames)
                   and any("rendered successfully" in text for text in console)):
            assert time.monotonic() < deadline, f"dashboard not live: frames {frames}, console {console}"
            page.wait_for_timeout(100)  # lets Playwright deliver the websocket and console events
        screenshot(page, "laptop-dashboard-alice.png")

        other = new_page(browser)  # a fresh context: no cookie of alice's
        log_in(other, lp.hub_url, "bob", "bob's first password")
        answer = other.goto(link)
        assert answer.status == 403
        assert "not one of bob's clusters" in other.content()


NOTEBOOK = """
import json, graticule
from graticule import settings
here = settings.resolve()
mine = graticule.Cluster(name={laptop_name!r}, shutdown_on_close=False)
with mine.get_client(set_as_default=False) as client:
    reached = client.submit(sum, range(10)).result()
mine.close()
new = graticule.Cluster(profile="small", n_workers=1, shutdown_on_close=False)
new.close()
print(json.dumps({{"gateway": here.gateway_url, "proxy": here.proxy_address, "reached": reached, "started": new.name}}))
"""


def test_a_notebook_and_the_laptop_share_clusters_by_name(laptop_cluster, lp, laptop, config_dir):
    token = lp.token("alice")
    lp.start_server("alice", token, profile="small")
    code = NOTEBOOK.format(laptop_name=laptop_cluster["name"])
    try:
        out = run_in_kernel(f"{lp.hub_url}/user/alice", token, code)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{lp.diagnostics('alice')}") from None
    notebook = json.loads(out.strip().splitlines()[-1])
    # One set of addresses: the notebook uses the laptop's front door, not the gateway's own port.
    assert (notebook["gateway"], notebook["proxy"]) == published(lp)
    assert notebook["reached"] == sum(range(10))
    try:
        assert on_laptop(laptop, config_dir, "compute", notebook["started"]) == {
            "name": notebook["started"], "sum": sum(range(10))}
    finally:
        on_laptop(laptop, config_dir, "stop", notebook["started"])


def test_down_leaves_no_process(lp, laptop_cluster):
    running = lp.remember_pids()
    assert len(running) >= 6, "expected proxy, hub, gateway, a scheduler and two workers"
    lp.down()
    assert lp.survivors() == []
