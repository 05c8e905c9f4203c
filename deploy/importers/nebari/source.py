"""The Nebari config as read: its era, its provider, and which keys the import used.

Every key the mapping reads with `take` counts as used; `unaccounted` (in dropped.py)
walks the rest, so nothing of the file is ever left out of the report silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deploy.importers.nebari.options import ImportRefused

Path_ = tuple[object, ...]

# Nebari's `provider` values and the section each keeps its settings in (QHub had `do`).
PROVIDER_SECTIONS = {
    "aws": "amazon_web_services",
    "gcp": "google_cloud_platform",
    "azure": "azure",
    "do": "digital_ocean",
    "local": "local",
    "existing": "existing",
}
UNSUPPORTED_PROVIDERS = {"azure": "Azure", "do": "DigitalOcean"}


@dataclass
class Source:
    data: dict
    taken: set[Path_] = field(default_factory=set)
    reasons: dict[Path_, str] = field(default_factory=dict)  # explicit drops with their reason

    def get(self, *path: object, default: object = None) -> object:
        node: object = self.data
        for part in path:
            if not _has(node, part):
                return default
            node = node[part]  # type: ignore[index]
        return node

    def mapping(self, *path: object) -> dict:
        value = self.get(*path)
        return value if isinstance(value, dict) else {}

    def sequence(self, *path: object) -> list:
        value = self.get(*path)
        return value if isinstance(value, list) else []

    def take(self, *path: object, default: object = None) -> object:
        """The value at `path`, marked as used by the import (with all it contains)."""
        if self.get(*path, default=_MISSING) is not _MISSING:
            self.taken.add(tuple(path))
        return self.get(*path, default=default)

    def drop(self, path: Path_, reason: str) -> None:
        if self.get(*path, default=_MISSING) is not _MISSING:
            self.reasons[tuple(path)] = reason

    @property
    def era(self) -> str:
        """'qhub' for QHub 0.3/0.4 files, else 'nebari'."""
        if "qhub_version" in self.data or isinstance(self.get("security", "users"), dict):
            return "qhub"
        return "nebari"

    @property
    def version(self) -> str:
        for key in ("nebari_version", "qhub_version"):
            if key in self.data:
                return str(self.take(key))
        return "0.3 (no version key)" if self.era == "qhub" else "(no version key)"

    def provider(self) -> str:
        provider = self.take("provider")
        if provider is None:  # Nebari infers it from the one provider section present
            present = [name for name, section in PROVIDER_SECTIONS.items() if section in self.data]
            provider = present[0] if len(present) == 1 else "local"
        if provider not in PROVIDER_SECTIONS:
            known = ", ".join(PROVIDER_SECTIONS)
            raise ImportRefused(("provider",), f"unknown Nebari provider {provider!r}; Nebari knows {known}")
        return str(provider)

    def provider_section(self, provider: str) -> Path_:
        return (PROVIDER_SECTIONS[provider],)


_MISSING = object()


def _has(node: object, part: object) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
