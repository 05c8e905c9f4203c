"""The invalid corpus: each file exits 2 with an error at the right FILE:LINE:COL.

`tests/invalid/EXPECTED.tsv` says, for each file, where the error must point (written
by hand from where the mistake is in the file), the dotted path, and a word the
message must contain.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deploy.cli.main import main

CORPUS = Path(__file__).parent / "invalid"


def _cases() -> list[tuple[str, str, str, str]]:
    rows = []
    for line in (CORPUS / "EXPECTED.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            name, where, path, word = (line.split("\t") + [""] * 4)[:4]
            rows.append((name, where, path, word))
    return rows


CASES = _cases()


def test_corpus_is_large_enough():
    assert len(CASES) >= 40
    assert {name for name, *_ in CASES} == {p.name for p in CORPUS.iterdir() if p.name != "EXPECTED.tsv"}


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
