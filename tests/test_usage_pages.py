"""The usage pages in a real browser, on a real local platform (hub, gateway, Dask, ledger).

alice sees her budget and her running cluster and stops it from the page (the gateway
then has no such cluster); bob's page shows nothing of alice's; carol, an admin, sees
both budgets and every running cluster, and stops bob's; the numbers on the page are `platform usage
--json`'s. A stop forged without the XSRF token, with bob's token, or by bob for
alice's cluster is refused. Screenshots are kept in the test's tmp dir (paths printed).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.support.browser import chromium, log_in, new_page
from tests.support.local_platform import LocalPlatform, local_platform

pytestmark = pytest.mark.slow

CONFIG = """\
apiVersion: graticule/v1
name: pagestest
target: local
hub:
  auth: {provider: local}
  default_profile: small
groups:
  admins: {admin: true}
  ocean: {budget: ocean, profiles: [small], environments: [default]}
  bees: {budget: bees, profiles: [small], environments: [default]}
users:
  - {name: alice, groups: [ocean]}
  - {name: bob, groups: [bees]}
  - {name: carol, groups: [admins]}
budgets:
  ocean: {monthly_usd: 100, max_cores: 8}
  bees: {monthly_usd: 50}
profiles:
  small: {cpu: 1, memory: 1GiB, price_per_hour_usd: 36}
dask:
  default_profile: small
  max_workers: 4
environments:
  default: {python: "3.11", packages: ["dask[distributed]==2026.8.0"]}
"""
PASSWORDS = {"alice": "alice's first password", "bob": "bob's first password", "carol": "carol's first password"}
WAIT_S = 180


@pytest.fixture(scope="module")
def lp(tmp_path_factory) -> LocalPlatform:
    with local_platform(CONFIG, tmp_path_factory.mktemp("pages")) as handle:
        yield handle


@pytest.fixture(scope="module")
def browser():
    with chromium() as handle:
        yield handle


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def pages(lp, browser, shots):
    """A logged-in page per user, kept for the module (each has its own browser context)."""
    opened = {}
    for user, password in PASSWORDS.items():
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = new_page(context)
        log_in(page, lp.hub_url, user, password)
        page.shots = shots  # where _shot keeps this page's screenshots
        opened[user] = page
    yield opened
    for page in opened.values():
        page.context.close()


@pytest.fixture(scope="module")
def alices_cluster(lp):
    """A running cluster of alice's with one worker; stopped at the end if still running."""
    gateway = lp.gateway("alice")
    name = gateway.submit(profile="small", workers=1)
    try:
        _wait_for(lambda: gateway.get_cluster(name).status.name == "RUNNING", "alice's cluster running")
        yield name
    finally:
        if _listed(gateway, name):
            gateway.stop_cluster(name)
        gateway.close()


def _wait_for(condition, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _listed(gateway, name: str) -> bool:
    return any(report.name == name for report in gateway.list_clusters())


def _open_usage(page, lp: LocalPlatform, user: str, *, cluster: str | None = None) -> None:
    page.goto(f"{lp.hub_url}/services/usage/")
    page.wait_for_selector("#viewer")
    if cluster is not None:  # the ledger opens the interval as the scheduler starts
        deadline = time.monotonic() + WAIT_S
        while page.locator(f"tr.cluster[data-cluster='{cluster}']").count() == 0:
            assert time.monotonic() < deadline, f"{cluster} never listed on {user}'s page"
            page.wait_for_timeout(500)
            page.reload()
    assert page.locator("#viewer").inner_text() == user


def _shot(page, name: str) -> None:
    path = page.shots / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_a_user_reaches_the_pages_from_the_hubs_navigation_bar(lp, pages):
    page = pages["bob"]
    page.goto(f"{lp.hub_url}/hub/home")
    link = page.locator("a.dropdown-item", has_text="usage")
    assert link.count() == 1 and link.get_attribute("href").rstrip("/").endswith("/services/usage")
    page.goto(f"{lp.hub_url}{link.get_attribute('href')}")
    page.wait_for_selector("#viewer")
    assert page.locator("#viewer").inner_text() == "bob"
    # The hub's look: its own stylesheet, served by the hub.
    assert page.locator("link[href='/hub/static/css/style.min.css']").count() == 1


def test_alice_sees_her_budget_and_running_cluster(lp, pages, alices_cluster):
    page = pages["alice"]
    _open_usage(page, lp, "alice", cluster=alices_cluster)
    budgets = page.locator("section.budget")
    assert budgets.evaluate_all("els => els.map(e => e.dataset.budget)") == ["ocean"]
    assert page.locator("section.budget tr.user").evaluate_all("els => els.map(e => e.dataset.user)") == ["alice"]
    row = page.locator(f"tr.cluster[data-cluster='{alices_cluster}']")
    assert row.locator("td").nth(2).inner_text() == "small"  # profile
    assert row.locator("a", has_text="dashboard").get_attribute("href") == (
        f"/services/dask-gateway/clusters/{alices_cluster}/status"
    )
    assert float(row.get_attribute("data-cost-usd")) > 0  # 36 USD an hour: it costs at once
    page.wait_for_selector("#chart-ocean[data-drawn='1'] .main-svg")  # plotly drew the daily chart
    _shot(page, "usage-alice.png")


def test_bobs_page_shows_nothing_of_alices_and_his_servers_profile(lp, pages, alices_cluster):
    page = pages["bob"]
    _open_usage(page, lp, "bob")
    assert page.locator("#my-server").inner_text() == "My notebook server: not running"
    lp.start_server("bob", lp.token("bob"), profile="small")  # a real notebook server
    page.reload()
    assert page.locator("#my-server").inner_text() == "My notebook server: profile small"
    html = page.content()
    assert "alice" not in html and alices_cluster not in html and "ocean" not in html
    assert page.locator("section.budget").evaluate_all("els => els.map(e => e.dataset.budget)") == ["bees"]
    assert page.locator("#no-clusters").count() == 1
    _shot(page, "usage-bob.png")


def test_an_admin_sees_every_budget_and_cluster(lp, pages, alices_cluster):
    page = pages["carol"]
    _open_usage(page, lp, "carol", cluster=alices_cluster)
    names = page.locator("section.budget").evaluate_all("els => els.map(e => e.dataset.budget)")
    assert sorted(names) == ["bees", "ocean"]
    row = page.locator(f"tr.cluster[data-cluster='{alices_cluster}']")
    assert row.get_attribute("data-user") == "alice" and row.locator("button.stop").count() == 1
    # Every user, spent or not: bob has spent nothing, yet he is listed under his budget.
    idle = page.locator("section.budget[data-budget='bees'] tr.idle-member")
    assert idle.evaluate_all("els => els.map(e => e.dataset.user)") == ["bob"]
    assert page.locator("#no-alerts, #alerts").count() == 1
    _shot(page, "usage-admin.png")


def _post_stop(page, lp: LocalPlatform, cluster: str, form: dict | None):
    """POST the stop form from inside the browser (same origin, the page's cookies)."""
    return page.request.post(
        f"{lp.hub_url}/services/usage/clusters/{cluster}/stop", form=form or {}, max_redirects=0
    )


def test_forged_stops_are_refused(lp, pages, alices_cluster):
    alice, bob = pages["alice"], pages["bob"]
    _open_usage(alice, lp, "alice", cluster=alices_cluster)
    _open_usage(bob, lp, "bob")
    bobs_token = bob.locator("input[name=_xsrf]").count() and bob.locator("input[name=_xsrf]").first.input_value()
    if not bobs_token:  # bob has no cluster, so no form: take his token from his xsrf cookie
        bobs_token = next(c["value"] for c in bob.context.cookies() if c["name"] == "_xsrf")

    assert _post_stop(alice, lp, alices_cluster, None).status == 403  # no XSRF token at all
    assert _post_stop(alice, lp, alices_cluster, {"_xsrf": bobs_token}).status == 403  # another user's
    # bob's own valid token, for alice's cluster: refused by the server-side ownership check.
    answer = _post_stop(bob, lp, alices_cluster, {"_xsrf": bobs_token})
    assert answer.status == 403 and "may not stop" in answer.text()

    alices_token = alice.locator("input[name=_xsrf]").first.input_value()
    answer = _post_stop(alice, lp, "no-such-cluster", {"_xsrf": alices_token})
    assert answer.status == 404 and "no running cluster no-such-cluster" in answer.text()

    gateway = lp.gateway("alice")
    try:
        assert _listed(gateway, alices_cluster), "a forged request stopped alice's cluster"
    finally:
        gateway.close()


def test_an_admin_stops_another_users_cluster(lp, pages):
    gateway = lp.gateway("bob")
    name = gateway.submit(profile="small")
    try:
        page = pages["carol"]
        _open_usage(page, lp, "carol", cluster=name)
        with page.expect_navigation():
            page.locator(f"tr.cluster[data-cluster='{name}'] button.stop").click()
        _wait_for(lambda: not _listed(gateway, name), "bob's cluster gone from the gateway")
    finally:
        if _listed(gateway, name):
            gateway.stop_cluster(name)
        gateway.close()


def test_alice_stops_her_cluster_from_the_page_and_numbers_match_usage(lp, pages, alices_cluster):
    page = pages["alice"]
    _open_usage(page, lp, "alice", cluster=alices_cluster)
    with page.expect_navigation():
        page.locator(f"tr.cluster[data-cluster='{alices_cluster}'] button.stop").click()
    assert page.locator("#stopped").inner_text() == f"Stopping cluster {alices_cluster}."

    gateway = lp.gateway("alice")
    try:
        _wait_for(lambda: not _listed(gateway, alices_cluster), "the cluster gone from the gateway")
    finally:
        gateway.close()
    _wait_for(
        lambda: all(b["clusters_running"] == 0 for b in _usage(lp)["budgets"]), "the ledger closed every interval"
    )

    # Nothing runs now, so the money is fixed: the pages must show `platform usage --json`.
    report = _usage(lp)
    for user in ("alice", "carol"):
        page = pages[user]
        _open_usage(page, lp, user)
        assert page.locator("#no-clusters").count() == 1
        shown = {
            el["budget"]: el
            for el in page.locator("section.budget").evaluate_all(
                "els => els.map(e => ({budget: e.dataset.budget, spent: e.dataset.spentUsd,"
                " limit: e.dataset.limitUsd, cores: e.dataset.coresInUse,"
                " users: [...e.querySelectorAll('tr.user')].map(r => [r.dataset.user, r.dataset.spentUsd])}))"
            )
        }
        for budget in report["budgets"]:
            if user == "alice" and budget["name"] != "ocean":
                assert budget["name"] not in shown
                continue
            got = shown[budget["name"]]
            assert float(got["spent"]) == budget["spent_usd"]
            assert float(got["limit"]) == budget["limit_usd"]
            assert float(got["cores"]) == budget["cores_in_use"]
            assert got["users"] == [[u["name"], str(u["spent_usd"])] for u in budget["users"]]
        _shot(page, f"usage-{user}-after-stop.png")
    assert report["budgets"][0]["name"] == "ocean" and report["budgets"][0]["spent_usd"] > 0


def _usage(lp: LocalPlatform) -> dict:
    done = lp.platform("usage", str(lp.config_path), "--state", str(lp.state_dir), "--json")
    return json.loads(done.stdout)
