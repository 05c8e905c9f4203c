"""build/hub/: the JupyterHub configuration for a platform, on any target.

Two files: `jupyterhub_config.py`, the same small, readable program for every platform,
and `platform.json` beside it, the data it reads (people, groups, profiles, auth). The
config takes everything about the machine it runs on (URLs, state directory, secrets)
from GRATICULE_* environment variables at run time, so build/ holds no secret and no path.
"""

from __future__ import annotations

import json
from importlib import resources

from render import entitlements
from render.gateway_config import SERVICE_NAME as GATEWAY_SERVICE
from render.schema import Platform

# Import strings of the runtime classes the config names (implemented in deploy/hub/).
LOCAL_AUTHENTICATOR = "deploy.hub.auth.LocalPasswordAuthenticator"
GITHUB_AUTHENTICATOR = "deploy.hub.oauth.PlatformGitHubOAuthenticator"
OIDC_AUTHENTICATOR = "deploy.hub.oauth.PlatformOIDCAuthenticator"
SPAWNER = "deploy.hub.spawner.ProfileSpawner"
# aws, gcp: every notebook server on an instance of its own, never on the hub's machine
VM_SPAWNERS = {"aws": "deploy.hub.vm_spawner.VMSpawner", "gcp": "deploy.hub.vm_spawner.VMSpawner"}

GATEWAY_ACCESS_SCOPE = f"access:services!service={GATEWAY_SERVICE}"
GATEWAY_PATH = f"/services/{GATEWAY_SERVICE}"  # the gateway behind the hub's proxy
DISCOVERY_SERVICE = "platform"  # serves /services/platform/discovery.json
PAGES_SERVICE = "usage"  # the usage pages at /services/usage/ (deploy/hub/pages)
# Whoever holds it unfiltered (the hub's admins) sees every user on the usage pages.
PAGES_ALL_USERS_SCOPE = "read:users"


def render_hub(platform: Platform, target: str | None = None) -> dict[str, bytes]:
    """Relative path under build/ -> bytes, for the hub of `platform` on `target`."""
    target = target or platform.target
    config = resources.files("render.templates").joinpath("jupyterhub_config.py.tmpl").read_bytes()
    data = hub_data(platform, target)
    return {
        "hub/jupyterhub_config.py": config,
        "hub/platform.json": (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(),
    }


def hub_data(platform: Platform, target: str) -> dict:
    """What jupyterhub_config.py needs to know about the platform, as plain JSON data."""
    users = {
        user.name: {
            "email": user.email,
            "groups": list(user.groups),
            "admin": entitlements.is_admin(platform, user),
            "profiles": entitlements.profiles_of(platform, user),
            "environments": entitlements.environments_of(platform, user),
            "default_profile": entitlements.default_profile_for(
                platform, user, platform.hub.default_profile
            ),
            "budget": entitlements.budget_of(platform, user),
        }
        for user in platform.users
    }
    return {
        "name": platform.name,
        "target": target,
        "auth": _auth(platform, target),
        "spawner_class": VM_SPAWNERS.get(target, SPAWNER),
        "users": users,
        "admins": sorted(name for name, user in users.items() if user["admin"]),
        "groups": {
            name: {
                "admin": group.admin,
                "users": entitlements.members_of(platform, name),
                "profiles": list(group.profiles),
                "environments": list(group.environments),
            }
            for name, group in platform.groups.items()
        },
        "profiles": {
            name: {
                "cpu": profile.cpu,
                "memory": profile.memory,
                "gpu": profile.gpu.model_dump() if profile.gpu else None,
            }
            for name, profile in platform.profiles.items()
        },
        "environments": {name: {"python": env.python} for name, env in platform.environments.items()},
        "idle_timeout": platform.hub.idle_timeout,
        "services": {
            "gateway": GATEWAY_SERVICE,
            "gateway_access_scope": GATEWAY_ACCESS_SCOPE,
            "gateway_path": GATEWAY_PATH,
            "discovery": DISCOVERY_SERVICE,
            "pages": PAGES_SERVICE,
            "pages_access_scope": f"access:services!service={PAGES_SERVICE}",
            "pages_all_users_scope": PAGES_ALL_USERS_SCOPE,
        },
    }


def _auth(platform: Platform, target: str) -> dict:
    auth = platform.hub.auth
    # The local target always uses the state directory's password store: an OAuth
    # provider cannot call back to 127.0.0.1 on a laptop it does not know.
    if target == "local" or auth.provider == "local":
        return {"provider": "local", "class": LOCAL_AUTHENTICATOR}
    if auth.provider == "github" and auth.github:
        return {
            "provider": "github",
            "class": GITHUB_AUTHENTICATOR,
            "client_id": auth.github.client_id,
            "org": auth.github.org,
        }
    if auth.provider == "oidc" and auth.oidc:
        return {
            "provider": "oidc",
            "class": OIDC_AUTHENTICATOR,
            "client_id": auth.oidc.client_id,
            "issuer": auth.oidc.issuer,
            "username_claim": auth.oidc.username_claim,
        }
    raise ValueError(f"hub.auth.provider {auth.provider!r} needs its hub.auth.{auth.provider} block")
