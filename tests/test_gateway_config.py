"""build/gateway/ as dask-gateway-server reads it: its own traitlets config loading."""

from __future__ import annotations

import json

import pytest
from dask_gateway_server.app import DaskGateway
from dask_gateway_server.models import User

from deploy.gateway.local import LocalProcessBackend
from render.gateway_config import render_gateway
from render.validate import validate_text
from tests.support.rendered_config import GATEWAY_RUNTIME_ENV, load_gateway_config, render_gateway_config


@pytest.fixture
def example(example_text):
    return validate_text(example_text)


@pytest.fixture
def runtime_env(monkeypatch, tmp_path):
    for key, value in GATEWAY_RUNTIME_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GRATICULE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("GRATICULE_GATEWAY_SCHEDULER_URL", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("target", "backend"),
    [
        ("local", "deploy.gateway.local.LocalProcessBackend"),
        ("aws", "deploy.gateway.aws.AWSBackend"),
        ("gcp", "deploy.gateway.gcp.GCPBackend"),
    ],
)
def test_config_names_auth_service_limits_and_backend(example, runtime_env, target, backend):
    config = load_gateway_config(render_gateway_config(example, target, runtime_env / "build"))

    assert config.DaskGateway.backend_class == backend
    assert config.DaskGateway.authenticator_class == ("dask_gateway_server.auth.JupyterHubAuthenticator")
    hub = config.JupyterHubAuthenticator
    assert hub.jupyterhub_service_name == "dask-gateway"
    assert hub.jupyterhub_api_url == GATEWAY_RUNTIME_ENV["GRATICULE_HUB_API_URL"]
    assert hub.jupyterhub_api_token == GATEWAY_RUNTIME_ENV["GRATICULE_GATEWAY_API_TOKEN"]
    assert config.Proxy.address == config.Proxy.tcp_address == "127.0.0.1:18001"

    assert config.ClusterConfig.cluster_max_workers == 100
    assert config.ClusterConfig.idle_timeout == 20 * 60
    assert config.GraticuleBackend.max_lifetime == 24 * 3600
    # Clusters outlive a gateway restart: the state is on disk, not in memory.
    assert config.DBBackendBase.stop_clusters_on_shutdown is False
    state = runtime_env / "state" / "gateway"
    assert config.DBBackendBase.db_url == f"sqlite:///{state / 'gateway.sqlite'}"
    assert config.GraticuleBackend.state_dir == str(state)


def _choices(options, field: str) -> list[str] | None:
    spec = {entry["field"]: entry for entry in options.get_specification()}
    return spec[field]["spec"].get("options") if field in spec else None


@pytest.mark.parametrize("target", ["local", "aws", "gcp"])
def test_options_offer_each_user_only_their_groups_grants(example, runtime_env, target):
    config = load_gateway_config(render_gateway_config(example, target, runtime_env / "build"))
    options_for = config.Backend.cluster_options

    alice, bob = options_for(User("alice")), options_for(User("bob"))
    assert _choices(alice, "profile") == ["small", "large", "gpu"]
    assert _choices(alice, "environment") == ["default", "ml"]
    assert _choices(bob, "profile") == ["small"]
    assert _choices(bob, "environment") == ["default"]
    spec = {entry["field"]: entry for entry in bob.get_specification()}
    assert spec["profile"]["default"] == "small"
    assert spec["workers"]["spec"] == {"type": "int", "min": 0, "max": 100}
    # Someone the hub knows but platform.yaml does not is offered nothing.
    assert options_for(User("mallory")).get_specification() == []


def test_options_size_workers_from_the_profile_and_refuse_what_is_not_granted(example, runtime_env):
    config = load_gateway_config(render_gateway_config(example, "local", runtime_env / "build"))
    options = config.Backend.cluster_options
    bob = options(User("bob"))

    chosen = bob.parse_options({"profile": "small", "workers": 2})
    assert bob.get_configuration(chosen, User("bob")) == {
        "worker_cores": 2,
        "worker_threads": 2,
        "worker_memory": 8 * 2**30,
    }
    with pytest.raises(ValueError, match=r"profile 'large' is not granted to user 'bob'.*: small"):
        bob.parse_options({"profile": "large"})
    with pytest.raises(ValueError, match=r"environment 'ml' is not granted"):
        bob.parse_options({"environment": "ml"})
    with pytest.raises(ValueError, match=r"at most 100 workers per cluster"):
        bob.parse_options({"workers": 101})


def test_local_config_initializes_the_real_gateway_app(example, runtime_env):
    """What `dask-gateway-server -f` does up to serving: load, then build auth and backend."""
    app = DaskGateway()
    app.initialize(["-f", str(render_gateway_config(example, "local", runtime_env / "build"))])
    assert isinstance(app.backend, LocalProcessBackend)
    assert app.authenticator.jupyterhub_service_name == "dask-gateway"
    assert app.authenticator.use_service_access_scopes is True
    cluster_config = app.backend.cluster_config_class(parent=app.backend)
    assert cluster_config.cluster_max_workers == 100
    assert cluster_config.idle_timeout == 1200
    assert app.backend.max_lifetime == 86400
    assert app.backend.is_admin("alice") and not app.backend.is_admin("bob")


def test_render_is_deterministic_and_holds_no_runtime_values(example):
    first, second = render_gateway(example, "local"), render_gateway(example, "local")
    assert first == second
    data = json.loads(first["gateway/platform.json"])
    assert data["users"]["bob"] == {
        "admin": False,
        "budget": "bob-thesis",
        "default_profile": "small",
        "environments": ["default"],
        "profiles": ["small"],
    }
    text = b"".join(first.values()).decode()
    assert "127.0.0.1" not in text and "token" not in data
