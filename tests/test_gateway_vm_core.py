"""What both clouds' VM backends read from the build directory, once, in `VMBackend`:
Terraform's outputs (`build/outputs.json`: the artifacts bucket, the hub's private address
where machines reach the gateway's API) and the environments' wheel-cache keys
(`build/environments/wheels.json`, rewritten by each apply).

Real parts: the shared example rendered for aws and for gcp, graticule's AWS and GCP
backends as dask-gateway configures them, dask-gateway's proxy settings. No cloud API is
called: these are reads of the files apply publishes.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from dask_gateway_server.proxy import Proxy

from deploy.cloud.google_clients import ENDPOINTS_VARIABLE
from deploy.gateway.aws import AWSBackend
from deploy.gateway.gcp import GCPBackend
from deploy.gateway.vm import OUTPUTS
from deploy.vm.environment_wheels import INDEX_FILE
from render.gateway_config import render_gateway
from render.validate import validate_text
from render.workers import render_workers

HUB_IP = "10.20.0.250"
BACKENDS = {"aws": AWSBackend, "gcp": GCPBackend}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, tmp_path, monkeypatch, example_text):
    target = request.param
    platform = validate_text(example_text.replace("target: local ", f"target: {target:<6}"))
    files = {**render_gateway(platform, target), **render_workers(platform, target)}
    for path, data in files.items():
        (tmp_path / "build" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "build" / path).write_bytes(data)
    monkeypatch.setenv("GRATICULE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv(ENDPOINTS_VARIABLE, str(tmp_path / "endpoints.json"))  # GCP: not on a VM, no metadata server
    backend = BACKENDS[target](platform=json.loads(files["gateway/platform.json"]),
                               state_dir=str(tmp_path / "gateway"))
    backend.proxy = Proxy(parent=backend, prefix="/services/dask-gateway")  # as the rendered config sets it
    return backend


def _write(backend, path: str, document) -> None:
    (backend.build_dir / path).parent.mkdir(parents=True, exist_ok=True)
    (backend.build_dir / path).write_text(json.dumps(document))


def _user_with_environments(backend) -> tuple[str, list[str]]:
    return next((name, grants.environments) for name, grants in backend.spec.users.items()
                if len(grants.environments) >= 1)


def test_terraform_outputs_give_the_bucket_and_the_machines_way_to_the_gateway(backend):
    assert (backend.build_dir / "workers").is_dir()  # beside the rendered workers
    _write(backend, OUTPUTS, {"artifacts_bucket": "lab-artifacts", "hub_private_ip": HUB_IP})
    assert backend.artifacts_bucket == "lab-artifacts"
    assert backend.api_url == f"http://{HUB_IP}:8000/services/dask-gateway/api"  # through the hub's proxy


@pytest.mark.parametrize("outputs", [None, "not json {", ["a", "list"], {}])
def test_without_usable_outputs_the_gateway_is_reached_at_its_own_proxy(backend, outputs):
    if outputs is not None:
        (backend.build_dir / OUTPUTS).write_text(outputs if isinstance(outputs, str) else json.dumps(outputs))
    assert backend.outputs == {}
    assert backend.artifacts_bucket == ""
    assert backend.api_url.endswith("/services/dask-gateway/api") and HUB_IP not in backend.api_url


def test_the_environment_key_is_the_named_or_first_granted_environment_s_as_last_published(backend):
    user, environments = _user_with_environments(backend)
    cluster = SimpleNamespace(options={}, username=user, name="c1")
    assert backend.environment_key(cluster) is None  # nothing published yet: the image's Python
    keys = {name: f"key-{index}" for index, name in enumerate(environments)}
    _write(backend, INDEX_FILE, keys)
    assert backend.environment_key(cluster) == keys[environments[0]]
    named = SimpleNamespace(options={"environment": environments[-1]}, username=user, name="c2")
    assert backend.environment_key(named) == keys[environments[-1]]
    unknown = SimpleNamespace(options={"environment": "not-published"}, username=user, name="c3")
    assert backend.environment_key(unknown) is None
    _write(backend, INDEX_FILE, {environments[0]: "republished"})  # a later apply: read again
    assert backend.environment_key(cluster) == "republished"
