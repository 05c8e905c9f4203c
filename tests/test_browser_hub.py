"""The hub in a real browser: Debian's Chromium, headless, driven by Playwright.

alice logs in on the hub's login page (her first login sets her password), picks a
profile on the spawn form, which offers exactly her groups' profiles, and JupyterLab
loads. Screenshots go to tests/artifacts/ (git-ignored), kept as test artifacts.
"""

from __future__ import annotations

import psutil
import pytest

from tests.support.browser import SPAWN_TIMEOUT_MS, chromium, log_in, new_page, screenshot, wait_for_jupyterlab
from tests.support.local_platform import LocalPlatform, local_platform

pytestmark = pytest.mark.slow

CONFIG = """\
apiVersion: graticule/v1
name: browsertest
target: local
hub:
  auth: {provider: local}
  default_profile: small
groups:
  admins: {admin: true}
  ocean: {profiles: [small, large], environments: [default]}
users:
  - {name: alice, groups: [admins, ocean]}
  - {name: bob, groups: [admins]}
profiles:
  small: {cpu: 1, memory: 1GiB}
  large: {cpu: 2, memory: 2GiB}
  huge: {cpu: 4, memory: 4GiB}
dask:
  default_profile: small
environments:
  default: {python: "3.11", packages: ["dask[distributed]==2026.8.0"]}
"""


@pytest.fixture(scope="module")
def lp(tmp_path_factory) -> LocalPlatform:
    with local_platform(CONFIG, tmp_path_factory.mktemp("browser")) as handle:
        yield handle


@pytest.fixture(scope="module")
def browser():
    with chromium() as handle:
        yield handle


def test_alice_logs_in_picks_a_profile_and_jupyterlab_loads(lp, browser):
    page = new_page(browser, viewport={"width": 1280, "height": 800})
    log_in(page, lp.hub_url, "alice", "alice's first password")

    # No server yet, and a choice to make: the hub shows the spawn form.
    page.goto(f"{lp.hub_url}/hub/spawn")
    profiles = page.locator("select[name=profile] option")
    assert profiles.evaluate_all("options => options.map(o => o.value)") == ["small", "large"]
    page.select_option("select[name=profile]", "large")
    screenshot(page, "hub-spawn-form.png")
    page.click("input[type=submit], button[type=submit]")

    page.wait_for_url("**/user/alice/lab**", timeout=SPAWN_TIMEOUT_MS)
    wait_for_jupyterlab(page)
    screenshot(page, "hub-jupyterlab.png")
    assert "JupyterLab" in page.title() or page.locator(".jp-LabShell").count() == 1

    # The server runs with the profile picked on the form.
    pid = lp.server_pid("alice")
    assert pid and psutil.Process(pid).environ()["GRATICULE_PROFILE"] == "large"
    page.close()


def test_a_user_without_profiles_is_told_so(lp, browser):
    page = new_page(browser)
    log_in(page, lp.hub_url, "bob", "bob's first password")
    page.goto(f"{lp.hub_url}/hub/spawn")
    assert page.locator("select[name=profile]").count() == 0
    assert "No hardware profile is granted to bob" in page.locator("#no-profiles").inner_text()
    page.close()
