"""`platform logs` on GCP, end to end, on the session's simulated platform
(tests/support/gcp_platform.py, the `gcp_platform` fixture).

The hub instance, booted from its rendered startup script in the GCE machine simulator,
runs `python -m deploy.vm.logship` as a systemd unit: it follows /var/log/graticule/*.log,
takes the instance from its metadata server stand-in and writes through
google-cloud-logging to the Cloud Logging fake (checked against Logging's discovery
document) at the address its /etc/graticule/google-endpoints.json names (the simulator's
stand-in for Private Google Access), with the instance service account's token. The
fake routes the entries by the rendered sink's filter into the rendered log bucket; the
operator's `platform logs` reads that bucket's view, as on GCP.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from urllib.parse import quote

import pytest

from deploy.cloud.gcp_log_sink import RESOURCE_NAME_LABEL
from tests.support.gcp_hub import PROJECT
from tests.support.gcp_platform import GcpPlatform, _child_env
from tests.support.procs import kill_tree

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
SHIPPED_WITHIN = 300.0  # the shipper passes every second; a busy shared machine is slow


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _eventually_logs(platform: GcpPlatform, component: str, wanted: list[str]) -> list[str]:
    """`platform logs COMPONENT --lines 0` once it shows all of `wanted`, in order."""
    deadline = time.monotonic() + SHIPPED_WITHIN
    shown: list[str] = []
    while time.monotonic() < deadline:
        done = platform.cli_unchecked("logs", component, "--lines", "0", timeout=120)
        shown = done.stdout.splitlines()
        if done.returncode == 0 and _in_order(wanted, shown):
            return shown
        assert done.returncode in (0, 2), done.stderr  # 2: nothing shipped for it yet
        time.sleep(3)
    raise AssertionError(f"`platform logs {component}` never showed {wanted[:5]}...: {shown[-20:]}\n"
                         f"{platform.diagnose(platform.hub_instance())}")


def _in_order(wanted: list[str], shown: list[str]) -> bool:
    rest = iter(shown)
    return all(any(line == candidate for candidate in rest) for line in wanted)


def test_platform_logs_shows_the_lines_the_hub_vm_wrote(gcp_platform: GcpPlatform):
    platform = gcp_platform
    box = platform.sim.wait_running(platform.hub_instance())
    log_dir = box.root / "var/log/graticule"
    try:
        written = _lines((log_dir / "hub.log").read_text(errors="replace"))[:20]
        assert written, "the hub wrote nothing to /var/log/graticule/hub.log"
        _eventually_logs(platform, "hub", written)
        gateway = _lines((log_dir / "gateway.log").read_text(errors="replace"))[:5]
        _eventually_logs(platform, "gateway", gateway)

        # what the VM's shipper wrote: the hub instance's resource, routed into the rendered bucket
        entries = [e for e in platform.cloud_logging.entries if quote("/hub/hub", safe="") in e["logName"]]
        assert entries and all(e["resource"]["type"] == "gce_instance" for e in entries)
        assert box.instance_id in {e["resource"]["labels"]["instance_id"] for e in entries}  # (and a replaced hub's)
        assert {e["labels"][RESOURCE_NAME_LABEL] for e in entries} == {platform.hub_instance()}
        assert {e["logName"].split("/logs/")[0] for e in entries} == {f"projects/{PROJECT}"}
        (bucket,) = platform.cloud_logging.buckets
        assert platform.outputs()["log_bucket"] == bucket

        # --follow: a line a component writes on the VM now is printed once shipped
        _eventually_logs(platform, "proxy", _lines((log_dir / "proxy.log").read_text(errors="replace"))[:1])
        follower = subprocess.Popen([sys.executable, "-m", "deploy.cli.main", "logs", "proxy", "--lines", "1",
                                     "--follow"], cwd=platform.root, env=_child_env(platform.env),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            printed: queue.Queue[str] = queue.Queue()
            threading.Thread(target=lambda: [printed.put(line) for line in follower.stdout], daemon=True).start()
            printed.get(timeout=SHIPPED_WITHIN)  # the last line shipped so far
            marker = f"graticule-e2e marker {time.time_ns()}"
            box.exec(["sh", "-c", f"echo '{marker}' >> /var/log/graticule/proxy.log"])
            deadline = time.monotonic() + SHIPPED_WITHIN
            while printed.get(timeout=max(1.0, deadline - time.monotonic())) != marker + "\n":
                pass  # the proxy's own lines written meanwhile
        finally:
            kill_tree(follower.pid)
            follower.wait(timeout=30)
    except BaseException:
        print(platform.diagnose(platform.hub_instance()))
        raise
