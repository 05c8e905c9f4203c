"""The state directory of a platform's runtime: private files, secrets, layout.

Everything the hub machine keeps (the local target's, or a hub VM's: hub database,
secrets, passwords, pid records, logs, users' working directories) lives under one
directory created 0700, files 0600. `state_dir_for` is the one place that knows the
default, `.platform/<name>` under the working directory.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from deploy.files import write_atomic


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed and make it 0700."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes | str) -> None:
    private_dir(path.parent)
    write_atomic(path, data, mode=0o600)


def secret(path: Path, make=lambda: secrets.token_hex(32)) -> str:
    """The secret stored at `path`, generated and stored 0600 on first use, reused after."""
    if path.exists():
        return path.read_text().strip()
    value = make()
    write_private(path, value + "\n")
    return value


@dataclass(frozen=True)
class Layout:
    """Where things live under a state directory."""

    root: Path

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def hub(self) -> Path:
        return self.root / "hub"

    @property
    def gateway(self) -> Path:
        return self.root / "gateway"

    @property
    def users(self) -> Path:
        return self.root / "users"

    def create(self) -> None:
        for directory in (self.root, self.secrets, self.run, self.logs, self.hub, self.gateway, self.users):
            private_dir(directory)


STATE_ROOT = ".platform"


def default_state_dir(platform_name: str, base: Path | None = None) -> Path:
    return ((base or Path.cwd()) / STATE_ROOT / platform_name).absolute()


def state_dir_for(platform_name: str, given: str | Path | None = None) -> Path:
    """The state directory given (`--state`), else the default; always absolute."""
    return Path(given).absolute() if given else default_state_dir(platform_name)
