"""The invalid corpus: each file exits 2 with an error at the right FILE:LINE:COL.

`tests/invalid/EXPECTED.tsv` says, for each file, where the error must point (written
by hand from where the mistake is in the file), the dotted path, a word the message must
contain and, for warnings, `warning`: a warning exits 0 (printed) and exits 2 only under
`validate --strict`, the mode CI runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deploy.cli.main import main

CORPUS = Path(__file__).parent / "invalid"


def _rows() -> list[tuple[str, str, str, str, str]]:
    rows = []
    for line in (CORPUS / "EXPECTED.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            name, where, path, word, severity = (line.split("\t") + [""] * 5)[:5]
            rows.append((name, where, path, word, severity or "error"))
    return rows


ROWS = _rows()
CASES = [(name, where, path, word) for name, where, path, word, severity in ROWS if severity == "error"]
WARNINGS = [(name, where, path, word) for name, where, path, word, severity in ROWS if severity == "warning"]


def test_corpus_is_large_enough():
    assert len(CASES) >= 40 and len(WARNINGS) >= 3
    assert {row[0] for row in ROWS} == {p.name for p in CORPUS.iterdir() if p.name != "EXPECTED.tsv"}
    assert {row[4] for row in ROWS} == {"error", "warning"}


@pytest.mark.parametrize(("name", "where", "path", "word"), CASES, ids=[c[0] for c in CASES])
def test_invalid_file_is_located(name, where, path, word, capsys, monkeypatch):
    monkeypatch.chdir(CORPUS)
    assert main(["validate", name]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert lines, "no error printed"
    assert all(line.startswith(f"{name}:") for line in lines), lines
    prefix = f"{name}:{where}: {path}" if where != "any" else f"{name}:"
    matching = [line for line in lines if line.startswith(prefix)]
    assert matching, f"expected an error starting {prefix!r}, got {lines}"
    assert any(word in line for line in matching), f"{word!r} not in {matching}"
    assert "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize(("name", "where", "path", "word"), WARNINGS, ids=[c[0] for c in WARNINGS])
def test_warning_passes_but_fails_strict(name, where, path, word, capsys, monkeypatch):
    monkeypatch.chdir(CORPUS)
    assert main(["validate", name]) == 0
    plain = capsys.readouterr()
    assert plain.out.startswith("OK: ")
    expected = f"{name}:{where}: {path}: warning: "
    assert [line for line in plain.err.splitlines() if line.startswith(expected) and word in line], plain.err
    assert main(["validate", "--strict", name]) == 2
    strict = capsys.readouterr()
    assert any(line.startswith(expected) for line in strict.err.splitlines()) and "--strict" in strict.err
    assert "OK" not in strict.out


def test_corpus_through_the_real_executable():
    """A handful through a subprocess, as a user would run them: exit 2, no traceback."""
    for name in ("yaml_bomb.yaml", "binary_png.bin", "not_utf8.yaml", "empty.yaml", "two_documents.yaml"):
        result = subprocess.run(
            [sys.executable, "-m", "deploy.cli.main", "validate", name],
            cwd=CORPUS,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, (name, result.stderr)
        assert result.stderr.startswith(f"{name}:") and "Traceback" not in result.stderr
