"""The rendered hub configuration, loaded the way JupyterHub loads it (its own config
loader), for the local target and for aws (GitHub) and gcp (OIDC); and the runtime
classes it names (authenticators, spawner) built from that configuration."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from deploy.hub import passwords
from render.hub_config import GATEWAY_ACCESS_SCOPE, render_hub
from render.validate import validate_text
from tests.support.rendered_config import HUB_RUNTIME_ENV, load_hub_config

OIDC = """\
  auth:
    provider: oidc
    oidc:
      issuer: https://id.oceanlab.org/realms/ocean
      client_id: oceanlab-hub
"""


@pytest.fixture
def runtime(monkeypatch, tmp_path) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("GRATICULE_STATE_DIR", str(state))
    for key, value in HUB_RUNTIME_ENV.items():
        monkeypatch.setenv(key, value)
    return state


def oidc_text(example_text: str) -> str:
    start = example_text.index("  auth:\n")
    end = example_text.index("  instance:")
    return example_text[:start] + OIDC + example_text[end:]


def test_render_is_deterministic_and_holds_no_runtime_value(example_text, runtime):
    platform = validate_text(example_text)
    for target in ("local", "aws", "gcp"):
        first, second = render_hub(platform, target), render_hub(platform, target)
        assert first == second
        assert set(first) == {"hub/jupyterhub_config.py", "hub/platform.json"}
        for data in first.values():
            for value in (*HUB_RUNTIME_ENV.values(), str(runtime)):
                assert value.encode() not in data


def test_local_config(example_text, runtime, tmp_path):
    # The example says `provider: github`; on the local target the hub uses local passwords.
    config = load_hub_config(example_text, "local", tmp_path)
    hub = config.JupyterHub
    assert hub.authenticator_class == "deploy.hub.auth.LocalPasswordAuthenticator"
    assert config.LocalPasswordAuthenticator.state_dir == str(runtime)
    assert config.Authenticator.allowed_users == {"alice", "bob", "carol"}
    assert config.Authenticator.admin_users == {"alice"}
    assert config.Authenticator.allow_existing_users is False
    assert hub.load_groups == {
        "admins": {"users": ["alice"], "properties": {"admin": True}},
        "ocean": {"users": ["alice", "carol"], "properties": {"admin": False}},
        "students": {"users": ["bob"], "properties": {"admin": False}},
    }
    # Runtime values come from the environment, not from the rendered files.
    assert hub.bind_url == HUB_RUNTIME_ENV["GRATICULE_HUB_URL"]
    assert hub.hub_bind_url == HUB_RUNTIME_ENV["GRATICULE_HUB_BIND_URL"]
    assert hub.db_url == f"sqlite:///{runtime / 'hub' / 'jupyterhub.sqlite'}"
    assert hub.cookie_secret_file == str(runtime / "secrets" / "cookie_secret")
    assert hub.cleanup_servers is False
    assert config.ConfigurableHTTPProxy.should_start is False

    services = {service["name"]: service for service in hub.services}
    assert services["dask-gateway"]["api_token"] == "gateway-token-from-env"
    assert services["graticule"]["api_token"] == "admin-token-from-env"
    culler = services["idle-culler"]["command"]
    assert culler[1:3] == ["-m", "jupyterhub_idle_culler"]
    assert "--timeout=3600" in culler  # hub.idle_timeout: 1h

    roles = {role["name"]: role for role in hub.load_roles}
    assert roles["user"]["scopes"] == ["self", GATEWAY_ACCESS_SCOPE]
    assert GATEWAY_ACCESS_SCOPE == "access:services!service=dask-gateway"
    assert GATEWAY_ACCESS_SCOPE in roles["server"]["scopes"]  # notebooks' own token
    assert roles["idle-culler"]["services"] == ["idle-culler"]
    assert "delete:servers" in roles["idle-culler"]["scopes"]
    assert roles["graticule"]["services"] == ["graticule"]
    assert "tokens" in roles["graticule"]["scopes"]

    assert hub.spawner_class == "deploy.hub.spawner.ProfileSpawner"
    entitlements = config.ProfileSpawner.entitlements
    assert entitlements["bob"] == {"profiles": ["small"], "environments": ["default"], "default_profile": "small"}
    assert entitlements["alice"]["profiles"] == ["small", "large", "gpu"]
    assert config.ProfileSpawner.profiles["large"] == {"cpu": 16, "memory": 64 * 2**30, "gpu": None}


def test_aws_config_uses_github_with_the_org(example_text, runtime, tmp_path):
    config = load_hub_config(example_text, "aws", tmp_path)
    assert config.JupyterHub.authenticator_class == "deploy.hub.oauth.PlatformGitHubOAuthenticator"
    assert config.PlatformGitHubOAuthenticator.allowed_organizations == {"oceanlab"}
    assert config.OAuthenticator.client_id == "Iv1.0123456789abcdef"
    assert config.OAuthenticator.client_secret == "client-secret-from-env"
    assert config.OAuthenticator.oauth_callback_url == "http://127.0.0.1:18123/hub/oauth_callback"
    assert config.Authenticator.allowed_users == {"alice", "bob", "carol"}

    from deploy.hub.oauth import PlatformGitHubOAuthenticator

    auth = PlatformGitHubOAuthenticator(config=config)
    assert auth.allowed_organizations == {"oceanlab"}
    assert auth.client_secret == "client-secret-from-env"
    model = {"auth_state": {"token_response": {"access_token": "t", "token_type": "bearer"}}}
    # Not in platform.yaml: refused before GitHub is even asked.
    assert asyncio.run(auth.check_allowed("mallory", model)) is False
    # Listed: GitHub decides on org membership. GitHub cannot be reached offline, so its
    # membership answer is faked here (the only fake in this file).
    answers = {"alice": True, "bob": False}

    async def member(org, username, token, token_type):
        return org == "oceanlab" and answers[username]

    auth._check_membership_allowed_organizations = member
    assert asyncio.run(auth.check_allowed("alice", model)) is True
    assert asyncio.run(auth.check_allowed("bob", model)) is False


class _Discovery(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        base = f"http://127.0.0.1:{self.server.server_port}"
        body = json.dumps(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/auth",
                "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/userinfo",
            }
        ).encode()
        status = 200 if self.path == "/.well-known/openid-configuration" else 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_gcp_config_uses_oidc_with_discovery(example_text, runtime, tmp_path):
    config = load_hub_config(oidc_text(example_text), "gcp", tmp_path)
    assert config.JupyterHub.authenticator_class == "deploy.hub.oauth.PlatformOIDCAuthenticator"
    assert config.PlatformOIDCAuthenticator.issuer == "https://id.oceanlab.org/realms/ocean"
    assert config.PlatformOIDCAuthenticator.username_claim == "preferred_username"
    assert config.OAuthenticator.client_id == "oceanlab-hub"
    assert config.Authenticator.admin_users == {"alice"}
    assert {s["name"] for s in config.JupyterHub.services} == {"dask-gateway", "graticule", "idle-culler"}

    from deploy.hub.oauth import PlatformOIDCAuthenticator

    # The endpoints come from the issuer's discovery document, at run time (a real local
    # HTTP server stands in for the identity provider).
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Discovery)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config.PlatformOIDCAuthenticator.issuer = f"http://127.0.0.1:{server.server_port}"
        auth = PlatformOIDCAuthenticator(config=config)
        asyncio.run(auth.discover())  # at the first login, on the hub's loop
        assert auth.authorize_url.endswith("/auth")
        assert auth.token_url.endswith("/token")
        assert auth.userdata_url.endswith("/userinfo")
    finally:
        server.shutdown()
    assert asyncio.run(auth.check_allowed("alice", {})) is True
    assert asyncio.run(auth.check_allowed("mallory", {})) is False


def test_local_authenticator_sets_the_password_at_first_login(example_text, runtime, tmp_path):
    from deploy.hub.auth import LocalPasswordAuthenticator

    auth = LocalPasswordAuthenticator(config=load_hub_config(example_text, "local", tmp_path))

    def login(name: str, password: str):
        return asyncio.run(auth.authenticate(None, {"username": name, "password": password}))

    assert login("mallory", "long enough password") is None
    assert not passwords.has_password(runtime, "mallory")
    assert login("bob", "short") is None  # too short to become the password
    assert login("bob", "bobs password") == "bob"
    assert login("bob", "another password") is None
    assert login("bob", "bobs password") == "bob"
    passwords.set_password(runtime, "carol", "set by an admin")  # `platform users passwd carol`
    assert login("carol", "anything else") is None
    assert login("carol", "set by an admin") == "carol"
    store = runtime / "passwords.json"
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    assert oct(runtime.stat().st_mode & 0o777) == "0o700"
    assert "bobs password" not in store.read_text()


def test_spawn_form_offers_only_the_users_profiles(example_text, runtime, tmp_path):
    from deploy.hub.spawner import ProfileSpawner

    config = load_hub_config(example_text, "local", tmp_path)

    def spawner(name: str, **options) -> ProfileSpawner:
        made = ProfileSpawner(user=SimpleNamespace(name=name, url=f"/user/{name}/"), config=config)
        made.user_options = options
        return made

    bob = spawner("bob")
    form = bob.options_form(bob)
    assert 'value="small"' in form
    assert 'value="large"' not in form and 'value="gpu"' not in form
    assert 'value="default"' in form and 'value="ml"' not in form
    alice = spawner("alice")
    form = alice.options_form(alice)
    assert all(f'value="{name}"' in form for name in ("small", "large", "gpu", "default", "ml"))
    assert alice.options_from_form({"profile": ["gpu"], "environment": ["ml"]}) == {
        "profile": "gpu",
        "environment": "ml",
    }
    # Checked again server-side, whatever the form or the REST API sent.
    assert spawner("alice", profile="gpu", environment="ml").chosen() == ("gpu", "ml")
    assert spawner("bob").chosen() == ("small", "default")
    from tornado.web import HTTPError

    with pytest.raises(HTTPError, match="profile 'large' is not available to bob"):
        spawner("bob", profile="large").chosen()
    with pytest.raises(HTTPError, match="environment 'ml' is not available to bob"):
        spawner("bob", environment="ml").chosen()
