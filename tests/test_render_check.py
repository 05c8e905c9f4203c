"""`platform render --check`: exit 0 when build/ matches, else exit 1 naming the files."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.cli.main import main


@pytest.fixture
def built(tmp_path: Path, example_text: str) -> tuple[Path, Path]:
    config = tmp_path / "platform.yaml"
    config.write_text(example_text)
    out = tmp_path / "build"
    assert main(["render", str(config), "--out", str(out)]) == 0
    return config, out


def check(config: Path, out: Path) -> int:
    return main(["render", str(config), "--out", str(out), "--check"])


def test_up_to_date(built, capsys) -> None:
    config, out = built
    capsys.readouterr()
    assert check(config, out) == 0
    assert "up to date" in capsys.readouterr().out


def test_stale_missing_and_extra_files_are_named(built, capsys) -> None:
    config, out = built
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    config.write_text(config.read_text().replace("memory: 64GiB", "memory: 96GiB"))
    (out / "workers" / "small.json").unlink()
    (out / "workers" / "leftover.json").write_text("{}")
    capsys.readouterr()
    assert check(config, out) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert "stale:   workers/large.json" in lines
    assert "stale:   manifest.json" in lines
    assert "missing: workers/small.json" in lines
    assert "extra:   workers/leftover.json" in lines
    assert "stale:   workers/gpu.json" not in lines
    assert "out of date" in captured.err
    # --check writes nothing
    assert not (out / "workers" / "small.json").exists()
    assert (out / "workers" / "large.json").read_bytes() == before[out / "workers" / "large.json"]


def test_no_build_yet_is_stale(tmp_path: Path, example_text: str, capsys) -> None:
    config = tmp_path / "platform.yaml"
    config.write_text(example_text)
    assert check(config, tmp_path / "nothing") == 1
    assert "missing: manifest.json" in capsys.readouterr().out


def test_check_after_render_with_another_target_is_stale(built, capsys) -> None:
    config, out = built
    capsys.readouterr()
    assert main(["render", str(config), "--out", str(out), "--target", "aws", "--check"]) == 1
    assert "missing: terraform/aws/main.tf.json" in capsys.readouterr().out
