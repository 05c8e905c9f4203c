"""Schema versions and the chain of in-place upgrades between them.

Each migration takes the ruamel round-trip tree of one version and edits it in place
into the next version's shape, so comments and key order survive. v2 added `jobs:`;
a v1 file is still valid as written (nothing in it changed meaning), and `platform
upgrade` rewrites it as v2 so that it may declare jobs.
"""

from __future__ import annotations

from collections.abc import Callable

from render.schema import API_VERSION

Migration = Callable[[dict], None]


def _v1_to_v2(tree: dict) -> None:
    """v2 only added the optional `jobs:` section: a v1 tree is already a v2 tree."""


# from-version -> (to-version, migration).
MIGRATIONS: dict[str, tuple[str, Migration]] = {"graticule/v1": ("graticule/v2", _v1_to_v2)}


def upgrade_path(version: str) -> list[tuple[str, str, Migration]]:
    """The (from, to, migration) steps from `version` to the current one; [] if current.

    Raises ValueError for a version that no chain leads from.
    """
    steps = []
    seen = set()
    while version != API_VERSION:
        if version not in MIGRATIONS or version in seen:
            known = ", ".join([API_VERSION, *MIGRATIONS])
            raise ValueError(f"unknown apiVersion {version!r}; this graticule knows {known}")
        seen.add(version)
        target, migration = MIGRATIONS[version]
        steps.append((version, target, migration))
        version = target
    return steps


def describe(version: object) -> str:
    """The validation message for a document whose apiVersion is not the current one."""
    if isinstance(version, str) and version in MIGRATIONS:
        return f"{version!r} is an older schema version; run `platform upgrade` to rewrite it as {API_VERSION}"
    return f"unknown apiVersion {version!r}; expected {API_VERSION!r}"
