"""The local target's password store: argon2 hashes in `<state>/passwords.json` (0600).

Passwords are set at a user's first login or with `platform users passwd NAME`; only
their hashes are kept, never in the repository or in build/.
"""

from __future__ import annotations

import json
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from deploy.runtime.state import private_dir, write_private

MIN_LENGTH = 8
_hasher = PasswordHasher()


def store_path(state_dir: Path) -> Path:
    return Path(state_dir) / "passwords.json"


def _read(state_dir: Path) -> dict[str, str]:
    path = store_path(state_dir)
    return json.loads(path.read_text()) if path.exists() else {}


def _write(state_dir: Path, hashes: dict[str, str]) -> None:
    private_dir(Path(state_dir))
    write_private(store_path(state_dir), json.dumps(hashes, indent=2, sort_keys=True) + "\n")


def set_password(state_dir: Path, username: str, password: str) -> None:
    """Store (or replace) the hash of `username`'s password."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    hashes = _read(state_dir)
    hashes[username] = _hasher.hash(password)
    _write(state_dir, hashes)


def has_password(state_dir: Path, username: str) -> bool:
    return username in _read(state_dir)


def verify_password(state_dir: Path, username: str, password: str) -> bool:
    """True when `password` matches the stored hash; False for unknown users too."""
    stored = _read(state_dir).get(username)
    if stored is None:
        return False
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(stored):  # parameters got stronger since it was set
        set_password(state_dir, username, password)
    return True
