"""What `platform up`, `down` and `status` report for the local target."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class UserLogin:
    name: str
    admin: bool
    password_set: bool


@dataclass
class UpResult:
    name: str
    state_dir: Path
    hub_url: str
    gateway_url: str | None
    scheduler_address: str | None = None
    started: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    users: list[UserLogin] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    up: bool
    pid: int | None
    address: str
    version: str | None
    detail: str = ""

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "up": self.up,
            "pid": self.pid,
            "address": self.address,
            "version": self.version,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class DownResult:
    stopped: list[int]
    survivors: list[int]
