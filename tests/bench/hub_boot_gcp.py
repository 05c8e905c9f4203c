"""The gcp half of the hub boot benchmark (tests/bench/bench_hub_boot.py): the platform
rendered for gcp, what its stack would create made in the fakes (tests/support/gcp_hub.py),
the wheelhouse and configuration published to the Cloud Storage emulator, then its hub
instance booted by the GCE simulator from the rendered startup script. Baseline in the
same simulator: an instance whose startup script starts a bare HTTP server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.vm import publish, wheelhouse
from deploy.vm.gcp_stores import GcsObjects
from render.build import render
from render.validate import validate_text
from tests.support.gce.server import running_fake_compute
from tests.support.gcp.secret_manager import running_secret_manager
from tests.support.gcp.storage import running_gcs
from tests.support.gcp_hub import PROJECT, RenderedStack, platform_yaml
from tests.support.simulator.gce_probes import delete_instance, insert_instance
from tests.support.simulator.gce_simulator import GceSimulator
from tests.support.simulator.probes import connect

SERVE = "#!/bin/sh\ncd /tmp && nohup python3 -m http.server 8000 >/var/log/http.log 2>&1 &\n"


def _baseline(sim: GceSimulator, compute, subnetwork: str) -> float:
    insert_instance(compute, "bench-baseline", subnetwork, SERVE)
    box = sim.wait_running("bench-baseline")
    started = box.extra["started_at"]
    while connect(box, "127.0.0.1", 8000, timeout=1) != "open":
        time.sleep(0.05)
    answered = time.monotonic()
    delete_instance(compute, "bench-baseline")
    sim.wait_stopped(box.instance_id)
    return answered - started


def measure_gcp(scratch: Path, phases_of: Callable[[Path, float], dict[str, float]]) -> dict:
    from tests.bench.bench_hub_boot import measured

    platform = validate_text(platform_yaml())
    build = render(platform)
    with running_fake_compute(PROJECT) as compute, running_gcs(PROJECT) as gcs, \
            running_secret_manager(PROJECT) as secrets, \
            GceSimulator(compute, scratch / "sim", storage=gcs.url, secretmanager=secrets.url,
                         poll_interval=0.1) as sim:
        client = secretmanager.SecretManagerServiceClient(
            credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": secrets.url})
        stack = RenderedStack(json.loads(build["terraform/gcp/main.tf.json"]), compute, gcs, client)
        bucket = stack.create()
        begin = time.monotonic()
        house = wheelhouse.ensure_wheelhouse(scratch / "wheelhouse", cloud="gcp")
        outputs = {"hub_url": "https://hub.oceanlab.org", "artifacts_bucket": bucket, "project": PROJECT}
        publish.publish(GcsObjects(bucket, client=gcs.client()), house, publish.config_files(build, outputs))
        published = time.monotonic() - begin
        baseline = _baseline(sim, compute, stack.subnetwork)
        stack.insert_hub()
        box = sim.wait_running(stack.hub["name"])
        running = time.time()
        phases = phases_of(box.console_log, 900)
        stack.delete_hub()
        sim.wait_stopped(box.instance_id, timeout=300)
    return measured(phases, running, baseline, published)
