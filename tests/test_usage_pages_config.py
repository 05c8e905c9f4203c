"""The usage pages in the rendered hub configuration, loaded with JupyterHub's own loader:
registered (with their role and every user's access scope) only where the machine gives
them a URL; the ledger URL, which may hold a password, comes from the environment only."""

from __future__ import annotations

import json

import pytest

from render.hub_config import PAGES_SERVICE
from tests.support.rendered_config import HUB_RUNTIME_ENV, load_hub_config

PAGES_SCOPE = f"access:services!service={PAGES_SERVICE}"
LEDGER_URL = "postgresql://ledger:s3cret@127.0.0.1:5432/ledger"


@pytest.fixture
def runtime(monkeypatch, tmp_path):
    monkeypatch.setenv("GRATICULE_STATE_DIR", str(tmp_path / "state"))
    for key, value in HUB_RUNTIME_ENV.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def test_the_pages_are_a_hub_service_every_user_may_reach(example_text, runtime, tmp_path):
    runtime.setenv("GRATICULE_PAGES_URL", "http://127.0.0.1:18130")
    runtime.setenv("GRATICULE_GATEWAY_SERVICE_URL", "http://127.0.0.1:18131")
    runtime.setenv("GRATICULE_LEDGER_URL", LEDGER_URL)
    hub = load_hub_config(example_text, "local", tmp_path).JupyterHub

    service = {s["name"]: s for s in hub.services}[PAGES_SERVICE]
    assert service["url"] == "http://127.0.0.1:18130"
    assert service["command"][1:] == ["-m", "deploy.hub.pages.app"]
    assert service.get("display", True) is True  # listed in the hub's Services menu
    settings = json.loads(service["environment"]["GRATICULE_PAGES"])
    assert settings["gateway_api_url"] == "http://127.0.0.1:18131/services/dask-gateway"
    assert settings["policy_file"] == str(tmp_path / "gateway" / "platform.json")
    assert settings["all_users_scope"] == "read:users"
    assert service["oauth_client_allowed_scopes"] == [PAGES_SCOPE, "read:users"]
    assert service["environment"]["GRATICULE_LEDGER_URL"] == LEDGER_URL

    roles = {role["name"]: role for role in hub.load_roles}
    assert PAGES_SCOPE in roles["user"]["scopes"]
    assert roles["usage-pages"] == {
        "name": "usage-pages",
        "scopes": ["read:users", "read:servers", "tokens"],
        "services": [PAGES_SERVICE],
    }
    rendered = b"".join(path.read_bytes() for path in (tmp_path / "hub").iterdir())
    assert b"s3cret" not in rendered and b"usage-pages" in rendered


def test_without_a_url_there_is_no_pages_service_nor_role(example_text, runtime, tmp_path):
    hub = load_hub_config(example_text, "local", tmp_path).JupyterHub
    assert PAGES_SERVICE not in {s["name"] for s in hub.services}
    roles = {role["name"]: role for role in hub.load_roles}
    assert "usage-pages" not in roles and PAGES_SCOPE not in roles["user"]["scopes"]
