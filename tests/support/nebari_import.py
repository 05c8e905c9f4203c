"""Helpers for the `platform import nebari` tests: run the command, read its report."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from deploy.cli.main import main

CORPUS = Path(__file__).resolve().parents[1] / "data" / "nebari"
REALM = CORPUS / "nebari-realm.json"


def load_yaml(text: str) -> object:
    """Plain data from YAML text (ruamel.yaml, the loader the platform itself uses)."""
    return YAML(typ="safe", pure=True).load(text)


def run_import(tmp_path: Path, capsys, name: str, *flags: str) -> tuple[int, str, str, Path]:
    """`platform import nebari CORPUS/name -o tmp/platform.yaml FLAGS`: exit code, report, errors, output."""
    out = tmp_path / "platform.yaml"
    code = main(["import", "nebari", str(CORPUS / name), "-o", str(out), *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err, out


def section(report: str, title: str) -> list[str]:
    """The items of one section of the report."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    items = []
    for line in lines[start + 1 :]:
        if not line.startswith("  - "):
            break
        items.append(line[4:])
    return items


def dropped_keys(report: str) -> list[str]:
    return [item.split(": ", 1)[0] for item in section(report, "Dropped")]


def mapped_sources(report: str) -> list[str]:
    """`a.b.{x, y.z} -> ...` names a.b.x and a.b.y.z."""
    sources = []
    for item in section(report, "Mapped"):
        source = item.split(" -> ", 1)[0]
        if source.endswith("}") and ".{" in source:
            base, keys = source[:-1].split(".{", 1)
            sources.extend(f"{base}.{key}" for key in keys.split(", "))
        else:
            sources.append(source)
    return sources


def leaf_paths(node: object, path: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        return [p for key, value in node.items() for p in leaf_paths(value, _join(path, key))]
    if isinstance(node, list) and node:
        return [p for index, value in enumerate(node) for p in leaf_paths(value, f"{path}[{index}]")]
    return [path]


def _join(path: str, key: object) -> str:
    key = str(key)
    plain = key.replace("_", "").replace("-", "").isalnum()
    return (f"{path}.{key}" if path else key) if plain else f'{path}["{key}"]'
