"""A newcomer's first hour: the README's first command, then what `platform up` prints.

On a copy of the repository's own platform.yaml (not a config made for the test), the
platform comes up; in headless Chromium alice logs in, picks `small` on the spawn form,
JupyterLab loads, she opens a Python notebook, types the notebook line `platform up`
printed plus a computation, runs the cell, and it prints 45 from a Dask cluster started
through the gateway. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import re
import shlex
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from deploy.cli.common import DEFAULT_CONFIG
from graticule.cluster import close_gateway
from tests.support.browser import (
    SPAWN_TIMEOUT_MS,
    KernelReplies,
    chromium,
    log_in,
    new_page,
    screenshot,
    wait_for_jupyterlab,
)
from tests.support.local_platform import REPO, LocalPlatform, local_platform

pytestmark = pytest.mark.slow

PASSWORD = "alice's first password"  # the instructions: the first one typed becomes hers
CLUSTER_TIMEOUT_MS = 300_000  # a cold cluster start (scheduler, 2 workers) on a busy 2-core box


def readme_first_command() -> str:
    """The first command line of the README's first shell block, comment stripped."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```(?:bash|sh|shell|console)\n(.*?)```", readme, re.S)
    assert block, "README.md has no shell block"
    first = next(line for line in block.group(1).splitlines() if line.strip())
    return first.split("#", 1)[0].strip()


def test_readme_first_command_ends_in_platform_up_on_the_repository_platform_yaml():
    words = shlex.split(readme_first_command())
    assert words[-2:] == ["platform", "up"], words
    # No path given: `platform up` reads platform.yaml in the current directory, the
    # repository's own file when run from the checkout as the README says.
    assert DEFAULT_CONFIG == "platform.yaml" and (REPO / DEFAULT_CONFIG).is_file()


@pytest.fixture(scope="module")
def lp(tmp_path_factory) -> LocalPlatform:
    config = (REPO / "platform.yaml").read_text()
    with local_platform(config, tmp_path_factory.mktemp("newcomer")) as handle:
        yield handle


def printed(lp: LocalPlatform, label: str) -> str:
    """The value after `label` in what `platform up` printed."""
    match = re.search(rf"^\s*{re.escape(label)}\s+(.+)$", lp.outputs[0], re.M)
    assert match, f"`platform up` printed no {label!r} line:\n{lp.outputs[0]}"
    return match.group(1).strip()


def test_a_newcomer_follows_the_printed_instructions_to_a_dask_cluster(lp):
    started = time.monotonic()
    hub_url = printed(lp, "JupyterHub")
    assert hub_url == lp.hub_url
    assert re.search(r"^\s+alice\s+\(admin\)\s+the password typed at the first login", lp.outputs[0], re.M)
    notebook_line = printed(lp, "From a notebook:")
    assert notebook_line.startswith("import graticule;"), notebook_line
    code = [
        notebook_line,
        "client = cluster.get_client(); print(client.submit(sum, range(10)).result())",
        "cluster.shutdown()",
    ]

    with chromium() as browser:
        page = new_page(browser, viewport={"width": 1280, "height": 800})
        log_in(page, hub_url, "alice", PASSWORD)

        page.goto(f"{hub_url}/hub/spawn")
        page.select_option("select[name=profile]", "small")
        with page.expect_navigation():
            page.click("input[type=submit], button[type=submit]")
        wait_for_jupyterlab(page)
        lab_ready = time.monotonic()

        # The launcher's first notebook card is the default Python kernel.
        card = page.locator('.jp-LauncherCard[data-category="Notebook"]').first
        kernel_label = card.get_attribute("title") or card.inner_text()
        assert "Python" in kernel_label, kernel_label
        kernel = KernelReplies(page)
        card.click()
        panel = page.locator(".jp-NotebookPanel:visible")
        kernel.wait()
        panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=SPAWN_TIMEOUT_MS)

        editor = panel.locator(".jp-Cell .cm-content").first
        editor.click()
        for index, line in enumerate(code):
            if index:
                page.keyboard.press("Enter")
            page.keyboard.type(line)
        assert editor.inner_text().splitlines() == code  # no auto-closed brackets, no indent
        page.keyboard.press("Shift+Enter")

        # Done when the prompt shows an execution count instead of [*].
        cell = panel.locator(".jp-Cell.jp-CodeCell").first
        try:
            cell.locator(".jp-InputPrompt", has_text="[1]:").wait_for(timeout=CLUSTER_TIMEOUT_MS)
        except PlaywrightTimeout:
            shot = screenshot(page, "newcomer-notebook-timeout.png")
            pytest.fail(
                f"the cell did not finish in {CLUSTER_TIMEOUT_MS // 1000} s: prompt "
                f"{cell.locator('.jp-InputPrompt').inner_text()!r}, output:\n"
                f"{cell.locator('.jp-OutputArea').inner_text()}\n(screenshot: {shot})\n{lp.diagnostics('alice')}"
            )
        output = cell.locator(".jp-OutputArea").inner_text()
        shot = screenshot(page, "newcomer-notebook.png")
        cell_done = time.monotonic()
        page.close()

    assert re.search(r"^45$", output, re.M), f"cell output:\n{output}\n(screenshot: {shot})"
    assert "Traceback" not in output and "Error" not in output, output
    # cluster.shutdown() in the notebook stopped it: nothing of alice's is left running.
    gateway = lp.gateway("alice")
    try:
        assert gateway.list_clusters() == []
    finally:
        close_gateway(gateway)
    print(
        f"\nlogin to JupyterLab {lab_ready - started:.1f} s; "
        f"notebook to 45 {cell_done - lab_ready:.1f} s; total {cell_done - started:.1f} s"
    )


def test_the_notebook_server_runs_the_profile_picked_on_the_form(lp):
    import psutil

    pid = lp.server_pid("alice")
    assert pid, "alice's notebook server is not running"
    assert psutil.Process(pid).environ()["GRATICULE_PROFILE"] == "small"

