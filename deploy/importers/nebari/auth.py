"""Nebari's `security.authentication` -> `hub.auth`, never copying a secret.

password -> local; GitHub -> github (the org comes from --github-org); Auth0 -> oidc with
the tenant's issuer; QHub's `custom` has no equivalent (local, noted). Client secrets
stay out of platform.yaml: the report says which secret goes into the secret store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from deploy.importers.nebari.options import ImportOptions
from deploy.importers.nebari.report import Report
from deploy.importers.nebari.source import Source

PATH = ("security", "authentication")
PLACEHOLDER = "change-me"
# Where Nebari read these when the file did not have them (GitHubConfig/Auth0Config).
NEBARI_VARIABLES = {
    "GitHub": {"client_id": "GITHUB_CLIENT_ID", "client_secret": "GITHUB_CLIENT_SECRET"},
    "Auth0": {
        "client_id": "AUTH0_CLIENT_ID",
        "client_secret": "AUTH0_CLIENT_SECRET",
        "auth0_subdomain": "AUTH0_DOMAIN",
    },
}


@dataclass
class ImportedAuth:
    block: dict
    todos: dict[tuple, str] = field(default_factory=dict)  # path inside hub.auth -> TODO text


def is_placeholder(value: object) -> bool:
    """`${VAR}`, QHub's `QHUB_SECRET_x`, or nothing at all: not a value to copy."""
    text = str(value or "")
    return not text or "${" in text or text.startswith(("QHUB_SECRET_", "NEBARI_SECRET")) or text.startswith("<")


def variable_of(value: object, default: str) -> str:
    """The environment variable a placeholder names: ${VAR} or QHUB_SECRET_var."""
    text = str(value or "")
    match = re.search(r"\$\{(\w+)\}", text)
    if match:
        return match.group(1)
    if text.startswith("QHUB_SECRET_"):
        return text.removeprefix("QHUB_SECRET_")
    return default


def import_auth(src: Source, options: ImportOptions, name: str, report: Report) -> ImportedAuth:
    kind = str(src.take(*PATH, "type") or "password")
    config = src.mapping(*PATH, "config")
    secret_name = f"graticule/{name}/oauth-client-secret"
    if kind == "password":
        report.map(
            PATH if src.get(*PATH, "type") else "(Nebari default) password login",
            "hub.auth.local",
            "each user sets a password at first login; password hashes are not carried over",
            keys=["type"] if src.get(*PATH, "type") else (),
        )
        return ImportedAuth({"provider": "local"})
    if kind not in NEBARI_VARIABLES:
        src.drop((*PATH, "authentication_class"), "custom authenticator classes cannot be imported")
        src.drop((*PATH, "config"), "configuration of the custom authenticator")
        report.note(
            f"authentication type {kind!r} has no equivalent: hub.auth.provider is local; choose github or oidc"
        )
        return ImportedAuth({"provider": "local"}, {("provider",): "TODO(import): Nebari used a custom authenticator"})
    variables = NEBARI_VARIABLES[kind]
    secret = config.get("client_secret")
    src.drop((*PATH, "config", "client_secret"), "a secret: never copied into platform.yaml (see secrets)")
    src.drop((*PATH, "config", "oauth_callback_url"), "the callback URL follows hub.domain")
    src.drop((*PATH, "config", "scope"), "scopes are the platform's own")
    report.secret(
        f"OAuth client secret (Nebari read it from {variable_of(secret, variables['client_secret'])} or "
        f"NEBARI_SECRET__security__authentication__config__client_secret) -> secret store entry `{secret_name}`"
    )
    if secret and not is_placeholder(secret):
        report.secret("the Nebari file held the OAuth client secret in clear text: rotate it after the move")
    todos: dict[tuple, str] = {}
    client_id = src.take(*PATH, "config", "client_id")
    if is_placeholder(client_id):
        todos[(kind_key(kind), "client_id")] = (
            f"TODO(import): the OAuth client id (Nebari read it from {variable_of(client_id, variables['client_id'])})"
        )
        client_id = PLACEHOLDER
        report.invent(f"hub.auth.{kind_key(kind)}.client_id", "placeholder: the Nebari file had no client id")
    if kind == "GitHub":
        org = options.github_org or PLACEHOLDER
        if not options.github_org:
            todos[("github", "org")] = "TODO(import): the GitHub organization whose members may log in (--github-org)"
            report.invent("hub.auth.github.org", "placeholder: Nebari let any GitHub user in that Keycloak knew")
        report.map(PATH, "hub.auth.github", "provider github", keys=_used(config, ["type", "config.client_id"]))
        return ImportedAuth({"provider": "github", "github": {"org": org, "client_id": str(client_id)}}, todos)
    subdomain = src.take(*PATH, "config", "auth0_subdomain")
    if is_placeholder(subdomain):
        issuer = f"https://{PLACEHOLDER}.auth0.com/"
        variable = variable_of(subdomain, variables["auth0_subdomain"])
        todos[("oidc", "issuer")] = f"TODO(import): your Auth0 tenant (Nebari read it from {variable})"
        report.invent("hub.auth.oidc.issuer", "placeholder: the Nebari file had no Auth0 domain")
    else:
        host = str(subdomain).removeprefix("https://").rstrip("/")
        issuer = f"https://{host if '.' in host else host + '.auth0.com'}/"
    keys = _used(config, ["type", "config.client_id", "config.auth0_subdomain"])
    report.map(PATH, "hub.auth.oidc", f"provider oidc, issuer {issuer}", keys=keys)
    return ImportedAuth({"provider": "oidc", "oidc": {"issuer": issuer, "client_id": str(client_id)}}, todos)


def _used(config: dict, keys: list[str]) -> list[str]:
    return [key for key in keys if key == "type" or key.split(".", 1)[1] in config]


def kind_key(kind: str) -> str:
    return "github" if kind == "GitHub" else "oidc"
