"""What an import did, for the admin who reviews it: mapped, invented, dropped, secrets."""

from __future__ import annotations

from dataclasses import dataclass, field

from render.errors import dotted


@dataclass
class Report:
    mapped: list[str] = field(default_factory=list)
    invented: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (nebari key, why)
    secrets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def map(self, source: tuple | str, target: str, detail: str = "", keys: list[str] | tuple = ()) -> None:
        """One line `SOURCE -> TARGET`; `keys` names the keys used inside SOURCE: `a.b.{x, y}`."""
        where = source if isinstance(source, str) else dotted(source)
        if keys:
            where += ".{" + ", ".join(keys) + "}"
        self.mapped.append(f"{where} -> {target}" + (f" ({detail})" if detail else ""))

    def invent(self, target: str, why: str) -> None:
        self.invented.append(f"{target}: {why}")

    def drop(self, source: tuple | str, why: str) -> None:
        self.dropped.append((source if isinstance(source, str) else dotted(source), why))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def secret(self, text: str) -> None:
        if text not in self.secrets:
            self.secrets.append(text)

    def dropped_keys(self) -> list[str]:
        return [key for key, _ in self.dropped]

    def format(self) -> str:
        sections = [
            ("Mapped", self.mapped),
            ("Invented (marked `# TODO(import)` in the file: review them)", self.invented),
            ("Dropped (no equivalent in graticule)", [f"{key}: {why}" for key, why in self.dropped]),
            ("Secrets to put in the secret store (never in platform.yaml)", self.secrets),
            ("Notes", self.notes),
        ]
        lines: list[str] = []
        for title, items in sections:
            if not items:
                continue
            lines.append(f"{title}:")
            lines.extend(f"  - {item}" for item in items)
        return "\n".join(lines) + "\n"
