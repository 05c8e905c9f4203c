"""The hub in a real browser: Debian's Chromium, headless, driven by Playwright.

alice logs in on the hub's login page (her first login sets her password), picks a
profile on the spawn form, which offers exactly her groups' profiles, and JupyterLab
loads. Screenshots go to tests/artifacts/ (git-ignored), kept as test artifacts.
"""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from tests.support.local_platform import LocalPlatform, local_platform

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

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
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def test_alice_logs_in_picks_a_profile_and_jupyterlab_loads(lp, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(60_000)
    page.goto(f"{lp.hub_url}/hub/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice's first password")
    page.click("input[type=submit], button[type=submit]")

    # No server yet, and a choice to make: the hub shows the spawn form.
    page.goto(f"{lp.hub_url}/hub/spawn")
    profiles = page.locator("select[name=profile] option")
    assert profiles.evaluate_all("options => options.map(o => o.value)") == ["small", "large"]
    page.select_option("select[name=profile]", "large")
    page.screenshot(path=str(ARTIFACTS / "hub-spawn-form.png"))
    page.click("input[type=submit], button[type=submit]")

    page.wait_for_url("**/user/alice/lab**", timeout=240_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=240_000)
    page.wait_for_selector(".jp-Launcher, .jp-LauncherCard", timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "hub-jupyterlab.png"))
    assert "JupyterLab" in page.title() or page.locator(".jp-LabShell").count() == 1

    # The server runs with the profile picked on the form.
    pid = lp.server_pid("alice")
    assert pid and psutil.Process(pid).environ()["GRATICULE_PROFILE"] == "large"
    page.close()


def test_a_user_without_profiles_is_told_so(lp, browser):
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{lp.hub_url}/hub/login")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "bob's first password")
    page.click("input[type=submit], button[type=submit]")
    page.goto(f"{lp.hub_url}/hub/spawn")
    assert page.locator("select[name=profile]").count() == 0
    assert "No hardware profile is granted to bob" in page.locator("#no-profiles").inner_text()
    page.close()
