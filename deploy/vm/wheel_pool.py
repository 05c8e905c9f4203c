"""The wheels a synced environment can be made of on the machines, chosen offline.

On aws the gateway runs on the hub VM, which may have no route to any package index
(`egress: none`). A synced environment (`Cluster(sync=True)`) is therefore made only of
wheels the platform already holds, for the machines' platform (CPython 3.11, x86_64,
glibc 2.36: Debian 12, the image's `python3`):

1. the wheels the laptop sent (its local packages), preferred for their names;
2. the hub's wheelhouse on the hub VM's disk (graticule[platform,aws]: Dask and friends);
3. the locked environments' wheel caches in the artifacts bucket (`environments/<key>/`).

`select` pins each requirement the laptop sent to one of those wheels: the exact version
when the pool has it, else (never for a critical package) the pool's newest, else left out;
then it closes the set over the chosen wheels' dependencies, as uv will check them on the
machines, dropping a package whose dependency nobody has. Every deviation is a note.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from deploy.vm.wheelhouse import PIP_PLATFORMS

PLATFORMS = (*PIP_PLATFORMS, "linux_x86_64")
MACHINE_TAGS = {tag: rank for rank, tag in enumerate([
    *cpython_tags((3, 11), abis=["cp311", "abi3", "none"], platforms=PLATFORMS),
    *compatible_tags((3, 11), interpreter="cp311", platforms=PLATFORMS),
])}
# Debian 12's python3 on x86_64: how the machines evaluate requirement markers.
MACHINE_MARKERS = {
    "python_version": "3.11", "python_full_version": "3.11.2", "implementation_name": "cpython",
    "implementation_version": "3.11.2", "platform_python_implementation": "CPython", "os_name": "posix",
    "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
}


class SelectionError(RuntimeError):
    """A critical package cannot be had as the laptop has it."""


@dataclass(frozen=True)
class Candidate:
    name: str  # canonical
    version: Version
    filename: str
    rank: int  # the best of its tags for the machines: lower is better
    source: str  # for messages: "laptop", "hub wheelhouse", "environments/<key>"
    path: Path | None = None  # on disk; None: in the artifacts bucket at `key`
    key: str | None = None


@dataclass
class WheelPool:
    """Candidates by name, in the order their sources were added (the first is preferred)."""

    fetch: Callable[[Candidate], Path] = field(default=lambda c: c.path)  # a bucket wheel onto disk
    by_name: dict[str, list[Candidate]] = field(default_factory=dict)

    def add(self, filename: str, source: str, path: Path | None = None, key: str | None = None) -> Candidate | None:
        """The candidate, or None when `filename` is no wheel the machines can install."""
        try:
            name, version, _, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            return None
        ranks = [MACHINE_TAGS[tag] for tag in tags if tag in MACHINE_TAGS]
        if not ranks:
            return None
        found = Candidate(canonicalize_name(name), version, filename, min(ranks), source, path, key)
        self.by_name.setdefault(found.name, []).append(found)
        return found

    def add_directory(self, directory: Path, source: str, files: Iterable[str] | None = None) -> None:
        for name in sorted(files if files is not None else (p.name for p in directory.glob("*.whl"))):
            if (directory / name).is_file():
                self.add(name, source, path=directory / name)

    def best(self, name: str, version: Version | None = None,
             specifier: SpecifierSet | None = None) -> Candidate | None:
        """`version` exactly, else the newest satisfying `specifier`; the first source's, best tag."""
        found = [c for c in self.by_name.get(name, [])
                 if (version is None or c.version == version)
                 and (specifier is None or specifier.contains(c.version, prereleases=True))]
        if not found:
            return None
        newest = max(c.version for c in found)
        return min((c for c in found if c.version == newest), key=lambda c: c.rank)  # min keeps source order

    def requirements_of(self, candidate: Candidate, extras: frozenset[str]) -> list[Requirement] | None:
        """What the wheel requires on the machines (with `extras`), from its METADATA; None when
        its Requires-Python excludes the machines' Python."""
        with zipfile.ZipFile(self.fetch(candidate)) as archive:
            member = next(n for n in archive.namelist()
                          if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
            metadata = Parser().parsestr(archive.read(member).decode("utf-8", "replace"))
        python = metadata.get("Requires-Python")
        try:
            if python and not SpecifierSet(python).contains(MACHINE_MARKERS["python_full_version"], prereleases=True):
                return None
        except InvalidSpecifier:
            pass  # uv decides on the hub
        needed = []
        for text in metadata.get_all("Requires-Dist") or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            marker = requirement.marker
            if marker is None or any(marker.evaluate({**MACHINE_MARKERS, "extra": extra})
                                     for extra in ("", *sorted(extras))):
                needed.append(requirement)
        return needed


@dataclass
class Selection:
    chosen: dict[str, Candidate]  # canonical name -> the wheel the machines install
    notes: list[str]  # what differs from what the laptop asked for


def _pinned(requirement: Requirement) -> Version | None:
    specs = list(requirement.specifier)
    if requirement.url is None and len(specs) == 1 and specs[0].operator in ("==", "==="):
        try:
            return Version(specs[0].version)
        except ValueError:
            return None
    return None


def select(pool: WheelPool, requirements: list[str], local: list[Candidate], critical: set[str]) -> Selection:
    """Each requirement (name==version from the laptop) pinned to a wheel of the pool, then closed."""
    chosen = {c.name: c for c in local}
    notes: list[str] = []
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name in chosen:
            continue
        pinned = _pinned(requirement)
        exact = pool.best(name, version=pinned) if pinned is not None else None
        if exact is not None:
            chosen[name] = exact
            continue
        if name in critical:
            raise SelectionError(f"{line} is not available to the gateway, and it must match exactly")
        other = pool.best(name)
        if other is not None:
            chosen[name] = other
            notes.append(f"{line} -> {other.version}")
        else:
            notes.append(f"{line} left out (not in the platform's wheels)")
    _close(pool, chosen, notes, critical)
    return Selection(dict(sorted(chosen.items())), notes)


def _close(pool: WheelPool, chosen: dict[str, Candidate], notes: list[str], critical: set[str]) -> None:
    """Add missing dependencies from the pool; drop a package whose dependency cannot be met."""
    extras: dict[str, frozenset[str]] = {}
    checked: set[tuple[str, frozenset[str]]] = set()
    dropped: set[str] = set()  # never added back: what needs one of them is dropped in turn
    changed = True
    while changed:
        changed = False
        for name, candidate in list(chosen.items()):
            if name not in chosen or (name, extras.get(name, frozenset())) in checked:
                continue
            requirements = pool.requirements_of(candidate, extras.get(name, frozenset()))
            if requirements is None:
                if name in critical:
                    raise SelectionError(f"{name} {candidate.version} does not run on the machines' Python "
                                         f"{MACHINE_MARKERS['python_full_version']}")
                del chosen[name]
                dropped.add(name)
                notes.append(f"{name} {candidate.version} left out: it does not run on Python "
                             f"{MACHINE_MARKERS['python_full_version']}")
                checked = set()
                changed = True
                continue
            unmet = None
            for requirement in requirements:
                dependency = canonicalize_name(requirement.name)
                wanted = extras.get(dependency, frozenset()) | frozenset(requirement.extras)
                if wanted != extras.get(dependency, frozenset()):
                    extras[dependency] = wanted
                    changed = True
                have = chosen.get(dependency)
                if have is not None and requirement.specifier.contains(have.version, prereleases=True):
                    continue
                added = (pool.best(dependency, specifier=requirement.specifier)
                         if have is None and dependency not in dropped else None)
                if added is not None:
                    chosen[dependency] = added
                    notes.append(f"{dependency} {added.version} added (needed by {name})")
                    changed = True
                    continue
                unmet = requirement
                break
            if unmet is None:
                checked.add((name, extras.get(name, frozenset())))
                continue
            if name in critical:
                raise SelectionError(f"{name} {candidate.version} needs {unmet}, which the gateway does not have")
            del chosen[name]
            dropped.add(name)
            notes.append(f"{name} {candidate.version} left out: it needs {unmet}, which the gateway does not have")
            checked = set()  # what depended on it is checked again
            changed = True
