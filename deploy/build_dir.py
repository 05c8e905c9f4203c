"""Reading, checking and replacing a build directory; validating for a chosen target.

The rendering itself is pure (`render.build`); this is the part that touches files and
git: loading platform.yaml (from disk or from a git revision) and comparing a render
with what a build directory holds.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.errors import RuntimeFailure
from render import loader
from render.build import MANIFEST
from render.schema import Platform
from render.validate import validate_document


def validate_for_target(document: loader.Document, target: str | None) -> Platform:
    """Validate as if the file said `target:` (so its cloud block, instance types and
    prices are checked for the target actually rendered); errors stay located."""
    if target and isinstance(document.data, dict):
        document.data["target"] = target
    return validate_document(document)


def load_for_target(path: Path, display: str, target: str | None) -> Platform:
    return validate_for_target(loader.load(path, display), target)


def read_tree(directory: Path) -> dict[str, bytes]:
    """Every regular file under `directory`, by POSIX path relative to it."""
    return {
        file.relative_to(directory).as_posix(): file.read_bytes()
        for file in sorted(directory.rglob("*"))
        if file.is_file() and not file.is_symlink()
    }


def is_replaceable(directory: Path) -> bool:
    """Only a missing or empty directory, or an earlier build, may be replaced wholesale."""
    if not directory.exists():
        return True
    if not directory.is_dir():
        return False
    return (directory / MANIFEST).is_file() or not any(directory.iterdir())


@dataclass(frozen=True)
class Staleness:
    missing: tuple[str, ...]
    stale: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return not (self.missing or self.stale or self.extra)

    def lines(self) -> list[str]:
        return [
            *(f"missing: {path}" for path in self.missing),
            *(f"stale:   {path}" for path in self.stale),
            *(f"extra:   {path}" for path in self.extra),
        ]


def compare(expected: Mapping[str, bytes], actual: Mapping[str, bytes]) -> Staleness:
    return Staleness(
        missing=tuple(sorted(set(expected) - set(actual))),
        stale=tuple(sorted(path for path in expected if path in actual and actual[path] != expected[path])),
        extra=tuple(sorted(set(actual) - set(expected))),
    )


class GitError(RuntimeFailure):
    pass


def git_file_at(path: Path, revision: str) -> str | None:
    """`path` as committed at `revision` (None if it did not exist there).

    Raises GitError when `revision` is not a commit of the repository holding `path`.
    """
    where = path.resolve().parent
    probe = _git(where, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if probe.returncode != 0:
        raise GitError(f"{revision!r} is neither a directory nor a git revision here")
    shown = _git(where, "show", f"{revision}:./{path.name}")
    if shown.returncode != 0:
        return None
    return shown.stdout.decode("utf-8", errors="replace")


def _git(cwd: Path, *arguments: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *arguments], cwd=cwd, capture_output=True, check=False, timeout=60)
    except FileNotFoundError:
        raise GitError("git is not installed") from None
