"""graticule's GCP gateway backend in the test process, against the fake Compute API and the
Secret Manager fake (the GCP counterpart of tests/support/vm_gateway.py).

The rendered `gateway/platform.json` and `workers/<profile>.json`, the rendered stack's
network and instance templates made in the fake (no Terraform Google provider runs
offline), dask-gateway's database layer in memory and the usage ledger on SQLite, on a clock
the test may move. Instances do not boot: jobs are started with the backend's own
`do_start_*` (`tests.support.vm_gateway.start`, which admits them first as the gateway does).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dask_gateway_server.backends.db_base import DataManager
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.budgets import Budgets, Policy
from deploy.cloud.gcp import GCPMachines
from deploy.cloud.gcp_machine_secrets import GcpMachineSecrets
from deploy.gateway.budgets import GatewayBudgets
from deploy.gateway.gcp import GCPBackend
from deploy.ledger import Ledger, ManualClock
from render.gateway_config import render_gateway
from render.terraform_gcp import synthesize_gcp
from render.validate import validate_text
from render.workers import render_workers
from tests.support.gce.rendered import Rendered
from tests.support.gce.server import FakeCompute, running_fake_compute
from tests.support.gcp.secret_manager import running_secret_manager


def gcp_text(example_text: str) -> str:
    return example_text.replace("target: local ", "target: gcp   ")


@contextmanager
def gcp_backend(tmp_path: Path, monkeypatch, text: str,
                clock: ManualClock | None = None) -> Iterator[tuple[GCPBackend, FakeCompute]]:
    """The backend on `text` (a platform.yaml with `target: gcp`) and the fake Compute API it uses."""
    platform = validate_text(text)
    files = {**render_gateway(platform, "gcp"), **render_workers(platform, "gcp")}
    for path, data in files.items():
        (tmp_path / "build" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "build" / path).write_bytes(data)
    monkeypatch.setenv("GRATICULE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("GRATICULE_LEDGER_URL", raising=False)
    project = platform.cloud.gcp.project
    with running_fake_compute(project) as fake, running_secret_manager(project) as secret_manager:
        Rendered(fake, json.loads(synthesize_gcp(platform))).create()
        made = GCPBackend(platform=json.loads(files["gateway/platform.json"]), state_dir=str(tmp_path / "gateway"),
                          api_url="https://hub.example/api", templates_dir=str(tmp_path / "build" / "workers"))
        made.db = DataManager(url="sqlite://")
        ledger = Ledger.open(state_dir=tmp_path, clock=clock or ManualClock(time.time()))
        made.budgets = GatewayBudgets(Budgets(ledger, Policy.from_gateway_spec(made.spec)), made.spec,
                                      whole_machines=made.whole_machines)
        template = made.worker_template(made.spec.dask.default_profile)
        made.machines = GCPMachines(project, regions=[template["region"]], client_options=fake.client_options(),
                                    credentials=AnonymousCredentials())
        made.secrets = GcpMachineSecrets(project, made.spec.name, client=(
            secretmanager.SecretManagerServiceClient(credentials=AnonymousCredentials(), transport="rest",
                                                     client_options={"api_endpoint": secret_manager.url})))
        try:
            yield made, fake
        finally:
            made.budgets.close()
