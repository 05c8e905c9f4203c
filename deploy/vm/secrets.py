"""The hub's secrets from the cloud's secret store (deploy.vm.stores: Secrets Manager,
Secret Manager), into the units' RuntimeDirectory (tmpfs).

Terraform creates each secret without a value. The five the hub owns are generated here
on first boot and put only when the secret has no value yet, then read back (so two
boots racing agree on one value). The OAuth client secret and the database URL are the
operator's: read when present, never made. Values go to /run/graticule/secrets/<name>
(0600), never to the state volume, the user data, build/ or Terraform's state.
"""

from __future__ import annotations

import secrets as random
from collections.abc import Callable
from pathlib import Path

from deploy.runtime.state import private_dir, write_private
from deploy.vm.stores import SecretStore
from modules import naming


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


GENERATORS: dict[str, Callable[[], str]] = {
    "cookie-secret": lambda: random.token_hex(32),
    "proxy-auth-token": lambda: random.token_hex(32),
    "gateway-api-token": lambda: random.token_hex(32),
    "admin-api-token": lambda: random.token_hex(32),
    "gateway-encrypt-keys": _fernet_key,
}
assert tuple(GENERATORS) == naming.SECRET_KEYS_GENERATED
OPERATORS = (naming.OAUTH_CLIENT_SECRET_KEY, naming.DATABASE_URL_KEY)  # read when set, never made


def file_name(key: str) -> str:
    """The runtime's name for a secret file (deploy.runtime.state.Layout.secrets)."""
    return key.replace("-", "_")


def ensure(store: SecretStore) -> dict[str, str]:
    """key -> value: the generated ones made when missing; the operator's when set."""
    values: dict[str, str] = {}
    for key, make in GENERATORS.items():
        value = store.value(key)
        if value is None:
            store.add(key, make())
            value = store.value(key)
        if not value:
            raise RuntimeError(f"secret {store.name(key)} has no value after putting one")
        values[key] = value
    for key in OPERATORS:
        value = store.value(key)
        if value and value.strip():
            values[key] = value.strip()
    return values


def write(values: dict[str, str], directory: Path) -> None:
    private_dir(directory)
    for key, value in values.items():
        write_private(directory / file_name(key), value + "\n")


def link_state_secrets(state_secrets: Path, runtime_secrets: Path) -> None:
    """The runtime reads `<state>/secrets/`: on the VM that is a link to the tmpfs copy."""
    if state_secrets.is_symlink() and state_secrets.resolve() == runtime_secrets.resolve():
        return
    if state_secrets.is_symlink() or state_secrets.is_file():
        state_secrets.unlink()
    elif state_secrets.is_dir():
        for stale in state_secrets.iterdir():  # from an earlier layout: secrets never stay on the volume
            stale.unlink()
        state_secrets.rmdir()
    state_secrets.symlink_to(runtime_secrets)
