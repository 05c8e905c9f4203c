"""render.build and `platform render`: deterministic bytes, atomic writes, loud failures."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.build_dir import load_for_target, read_tree
from deploy.cli.main import main
from render import build
from render.build import RenderError, render

TARGETS = ("local", "aws", "gcp")


@pytest.fixture
def example(tmp_path: Path, example_text: str) -> Path:
    path = tmp_path / "platform.yaml"
    path.write_text(example_text)
    return path


def rendered(path: Path, target: str) -> dict[str, bytes]:
    return render(load_for_target(path, str(path), target), target)


@pytest.mark.parametrize("target", TARGETS)
def test_full_render_for_every_target(example: Path, target: str) -> None:
    files = rendered(example, target)
    tops = {path.split("/")[0] for path in files}
    assert {"hub", "gateway", "workers", "environments", "cost.json", "manifest.json"} <= tops
    assert ("terraform" in tops) == (target != "local")
    if target != "local":
        assert f"terraform/{target}/main.tf.json" in files
    assert sorted(path for path in files if path.startswith("workers/")) == [
        "workers/gpu.json",
        "workers/large.json",
        "workers/small.json",
    ]
    manifest = json.loads(files["manifest.json"])
    assert manifest["target"] == target
    assert manifest["graticule"] == build.version()
    assert set(manifest["files"]) == set(files) - {"manifest.json"}
    for path, digest in manifest["files"].items():
        assert hashlib.sha256(files[path]).hexdigest() == digest
    assert "time" not in files["manifest.json"].decode()


@pytest.mark.parametrize("target", TARGETS)
def test_rendering_twice_gives_identical_bytes(example: Path, target: str) -> None:
    assert rendered(example, target) == rendered(example, target)


def test_model_digest_ignores_comments_and_unit_spelling(example: Path, tmp_path: Path) -> None:
    respelled = tmp_path / "respelled.yaml"
    text = example.read_text().replace("idle_timeout: 1h ", "idle_timeout: 60m")
    respelled.write_text("# a new comment\n" + text)
    assert text != example.read_text()
    first, second = (build.model_digest(load_for_target(p, "x", None)) for p in (example, respelled))
    assert first == second


def _cli_render(config: Path, out: Path, target: str, cwd: Path, seed: str) -> None:
    # this checkout's code from any cwd (not an installed copy that cwd would otherwise pick)
    repo = str(Path(__file__).resolve().parent.parent)
    inherited = os.environ.get("PYTHONPATH")
    environment = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join(filter(None, [repo, inherited]))}
    result = subprocess.run(
        [sys.executable, "-m", "deploy.cli.main", "render", str(config), "--out", str(out), "--target", target],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_identical_bytes_across_processes_cwd_and_hash_seed(example: Path, tmp_path: Path, target: str) -> None:
    repo = Path(__file__).resolve().parent.parent
    (tmp_path / "elsewhere").mkdir()
    _cli_render(example, tmp_path / "one", target, cwd=repo, seed="1")
    _cli_render(example, tmp_path / "two", target, cwd=tmp_path / "elsewhere", seed="4242")
    one, two = read_tree(tmp_path / "one"), read_tree(tmp_path / "two")
    assert one == two
    assert one == rendered(example, target)


def test_render_writes_the_build_and_reports(example: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "build"
    assert main(["render", str(example), "--out", str(out)]) == 0
    assert read_tree(out) == rendered(example, "local")
    assert "rendered" in capsys.readouterr().out


def test_invalid_file_leaves_previous_build_intact(example: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "build"
    assert main(["render", str(example), "--out", str(out)]) == 0
    before = read_tree(out)
    example.write_text(example.read_text().replace("groups: [students]", "groups: [studnets]"))
    assert main(["render", str(example), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "platform.yaml:" in err and "studnets" in err and "Traceback" not in err
    assert read_tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "platform.yaml"]  # no staging left


def test_a_renderer_raising_leaves_previous_build_intact(
    example: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    out = tmp_path / "build"
    assert main(["render", str(example), "--out", str(out)]) == 0
    before = read_tree(out)
    example.write_text(example.read_text().replace("memory: 64GiB", "memory: 96GiB"))

    def broken(platform, target):
        raise RuntimeError("disk on fire")

    import render.workers

    monkeypatch.setattr(render.workers, "render_workers", broken)
    assert main(["render", str(example), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "render.workers.render_workers failed: RuntimeError: disk on fire" in err
    assert "nothing written" in err and "Traceback" not in err
    assert read_tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "platform.yaml"]


def test_a_missing_renderer_fails_loudly_by_name(example: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        build, "STEPS", (*build.STEPS, build.Step("render.not_written_yet", "render_it", "it/"))
    )
    with pytest.raises(RenderError, match=r"render\.not_written_yet\.render_it is missing"):
        rendered(example, "local")


def test_a_renderer_writing_outside_its_folder_is_refused(example: Path, monkeypatch) -> None:
    import render.workers

    monkeypatch.setattr(render.workers, "render_workers", lambda p, t: {"hub/evil.json": b"{}"})
    with pytest.raises(RenderError, match=r"under 'workers/'"):
        rendered(example, "local")


def test_refuses_to_replace_a_directory_that_is_not_a_build(example: Path, tmp_path: Path, capsys) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    assert main(["render", str(example), "--out", str(precious)]) == 2
    assert "not a graticule build" in capsys.readouterr().err
    assert (precious / "notes.txt").read_text() == "keep me"


def test_target_override_is_validated_for_that_target(tmp_path: Path, example_text: str, capsys) -> None:
    # Without a cloud.gcp block, `--target gcp` is a located error, not a crash.
    path = tmp_path / "platform.yaml"
    start = example_text.index("  gcp:\n    project")
    end = example_text.index("\nhub:")
    path.write_text(example_text[:start] + example_text[end:])
    assert main(["render", str(path), "--out", str(tmp_path / "b"), "--target", "gcp"]) == 2
    err = capsys.readouterr().err
    assert "no cloud.gcp block" in err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("target", TARGETS)
def test_generated_platform_validates_and_renders(tmp_path: Path, target: str) -> None:
    from tests.support.generate import big_platform_yaml

    text = big_platform_yaml(users=60, groups=12, profiles=10, target=target)
    assert text == big_platform_yaml(users=60, groups=12, profiles=10, target=target)
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    platform = load_for_target(path, "platform.yaml", None)
    assert (len(platform.users), len(platform.groups), len(platform.profiles)) == (60, 12, 10)
    files = render(platform)
    assert len([p for p in files if p.startswith("workers/")]) == 10
    assert json.loads(files["manifest.json"])["target"] == target
