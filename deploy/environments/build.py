"""Build a Python environment with uv into a directory, atomically.

The environment is built in a temporary sibling directory and renamed into place only
when every step succeeded: a directory at the target path is always complete, so its
existence is the "already built" test, and a failed build leaves nothing behind.
Environments are created `--relocatable`, so the rename does not break their scripts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from deploy import console
from deploy.environments import uv


class Progress(Protocol):
    """Where a build reports what it does: its steps, and uv's lines as they come."""

    def step(self, title: str) -> None: ...

    def line(self, text: str) -> None: ...


def python_of(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def build(
    target: Path,
    python: str,
    requirements: list[str],
    wheels: list[Path] = (),
    *,
    exact: bool = True,
    require_hashes: bool = False,
    find_links: Path | None = None,
    finish: Callable[[Path], None] | None = None,
    progress: Progress | None = None,
) -> Path:
    """The environment's Python, building `target` first unless it already exists.

    exact: install exactly `requirements` (a lock: `uv pip sync`; no wheels); otherwise
    install them and `wheels` without dependencies (a sync capture lists everything).
    require_hashes: every requirement carries hashes and every file installed must match one.
    find_links: with exact, install offline from this directory of wheels only, the way the
    launched machines do (`uv pip install`, which checks dependencies), not `uv pip sync`.
    finish(tmp_dir): runs inside the temporary environment before the rename.
    progress: gets the steps and uv's output of a non-exact build (instead of --quiet)."""
    if python_of(target).exists():
        return python_of(target)
    if exact and wheels:
        raise ValueError("an exact (locked) build takes no extra wheels")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{target.name}-", dir=target.parent))
    try:
        quiet, on_line = ("--quiet",), None
        if progress is not None and (not exact or find_links is not None):
            quiet, on_line = (), progress.line
            progress.step(f"creating a Python {python} environment")
        uv.run("venv", *quiet, "--relocatable", "--no-project", "--python", python, str(tmp / "env"),
               on_line=on_line)
        requirement_file = tmp / "requirements.txt"
        requirement_file.write_text("".join(f"{line}\n" for line in requirements))
        interpreter = str(python_of(tmp / "env"))
        if exact and find_links is not None:
            if progress is not None:
                progress.step(f"installing {len(requirements)} wheels offline, hashes required (as the machines will)")
            uv.run("pip", "install", *quiet, "--python", interpreter, "--offline", "--no-index",
                   "--find-links", str(find_links), *(("--require-hashes",) if require_hashes else ()),
                   "-r", str(requirement_file), on_line=on_line)
        elif exact:
            hashes = ("--require-hashes",) if require_hashes else ()
            with console.step(f"installing {len(requirements)} packages into environment {target.name}"):
                uv.run("pip", "sync", *hashes, "--python", interpreter, str(requirement_file), stream=True)
        else:
            if progress is not None:
                local = f" and {len(wheels)} local wheel{'s' if len(wheels) != 1 else ''}" if wheels else ""
                packages = f"{len(requirements)} package{'s' if len(requirements) != 1 else ''}"
                progress.step(f"installing {packages}{local}")
            uv.run("pip", "install", *quiet, "--no-deps", "--python",
                   interpreter, "-r", str(requirement_file), *map(str, wheels), on_line=on_line)
        if finish is not None:
            finish(tmp / "env")
        try:
            os.rename(tmp / "env", target)
        except OSError:
            if not python_of(target).exists():  # not a concurrent build of the same thing
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return python_of(target)


def remove(target: Path) -> None:
    """Remove an environment: renamed away first, so nobody sees a half-deleted one."""
    if not target.exists():
        return
    doomed = target.with_name(f".delete-{target.name}-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.rename(target, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
