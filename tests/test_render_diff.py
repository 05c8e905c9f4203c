"""render.diffing and `platform diff`: file by file, Terraform resource by resource."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy.build_dir import load_for_target
from deploy.cli.main import main
from render.build import render
from render.diffing import diff_builds, format_text

DAVE = "  - name: dave\n    groups: [students]\n"


def add_dave(text: str) -> str:
    return text.replace("  - name: carol\n", DAVE + "  - name: carol\n")


def bigger_large(text: str) -> str:
    return text.replace(
        "instance: { aws: m6i.4xlarge, gcp: n2-standard-16 }", "instance: { aws: m6i.8xlarge, gcp: n2-standard-32 }"
    )


def render_text(tmp_path: Path, text: str, target: str, name: str) -> dict[str, bytes]:
    path = tmp_path / name
    path.write_text(text)
    return render(load_for_target(path, name, target), target)


def test_identical_builds_have_no_diff(tmp_path: Path, example_text: str) -> None:
    files = render_text(tmp_path, example_text, "local", "a.yaml")
    difference = diff_builds(files, dict(files))
    assert difference.empty
    assert format_text(difference) == "no changes to the rendered output\n"


def test_user_added(tmp_path: Path, example_text: str) -> None:
    old = render_text(tmp_path, example_text, "local", "a.yaml")
    new = render_text(tmp_path, add_dave(example_text), "local", "b.yaml")
    difference = diff_builds(old, new)
    changed = {change.path for change in difference.files}
    assert changed and all(change.action == "changed" for change in difference.files)
    assert not any(path.startswith("workers/") for path in changed)  # workers don't depend on users
    assert "manifest.json" not in changed
    added = [
        value for change in difference.files for value in change.keys if value.path.endswith("dave")
    ]
    assert added and all(value.as_dict().keys() == {"path", "new"} for value in added)
    assert any(line.lstrip().startswith("+ ") and "dave" in line for line in format_text(difference).splitlines())


def test_profile_changed_on_aws_shows_the_resource_and_attribute(tmp_path: Path, example_text: str) -> None:
    old = render_text(tmp_path, example_text, "aws", "a.yaml")
    new = render_text(tmp_path, bigger_large(example_text), "aws", "b.yaml")
    difference = diff_builds(old, new)
    by_path = {change.path: change for change in difference.files}
    worker = by_path["workers/large.json"]
    assert [(v.path, v.old, v.new) for v in worker.keys if v.path == "instance_type"] == [
        ("instance_type", "m6i.4xlarge", "m6i.8xlarge")
    ]
    terraform = by_path["terraform/aws/main.tf.json"]
    changed = [r for r in terraform.resources if r.action == "changed"]
    assert changed, "the launch template of profile 'large' should change"
    assert all(r.address.count(".") >= 1 for r in changed)
    attributes = [(v.old, v.new) for r in changed for v in r.attributes]
    assert ("m6i.4xlarge", "m6i.8xlarge") in attributes
    text = format_text(difference)
    assert '"m6i.4xlarge" -> "m6i.8xlarge"' in text
    assert "~ terraform/aws/main.tf.json" in text


def test_terraform_resources_added_removed_changed() -> None:
    def tf(resources: dict) -> bytes:
        return json.dumps({"resource": resources, "terraform": {"backend": {"s3": {"bucket": "b"}}}}).encode()

    old = {"terraform/aws/main.tf.json": tf({
        "aws_s3_bucket": {"data": {"bucket": "a"}, "gone": {"bucket": "g"}},
        "aws_instance": {"hub": {"instance_type": "t3.large", "tags": {"platform": "x"}}},
    })}
    new = {"terraform/aws/main.tf.json": tf({
        "aws_s3_bucket": {"data": {"bucket": "a"}, "fresh": {"bucket": "f"}},
        "aws_instance": {"hub": {"instance_type": "t3.xlarge", "tags": {"platform": "x", "budget": "b"}}},
    })}
    difference = diff_builds(old, new)
    resources = {r.address: r for r in difference.resources()}
    assert set(resources) == {"aws_s3_bucket.gone", "aws_s3_bucket.fresh", "aws_instance.hub"}
    assert resources["aws_s3_bucket.gone"].action == "removed"
    assert resources["aws_s3_bucket.fresh"].action == "added"
    hub = resources["aws_instance.hub"]
    assert hub.action == "changed"
    assert [v.as_dict() for v in hub.attributes] == [
        {"path": "instance_type", "old": "t3.large", "new": "t3.xlarge"},
        {"path": "tags.budget", "new": "b"},
    ]
    assert difference.summary()["resources_added"] == 1
    assert "1 to add, 1 to change, 1 to remove" in format_text(difference)


def test_files_added_and_removed_and_text_diff() -> None:
    old = {"workers/a.json": b"{}", "hub/config.py": b"x = 1\ny = 2\n"}
    new = {"workers/b.json": b"{}", "hub/config.py": b"x = 1\ny = 3\n"}
    text = format_text(diff_builds(old, new))
    assert "- workers/a.json" in text and "+ workers/b.json" in text
    assert "    -y = 2" in text and "    +y = 3" in text


@pytest.fixture
def project(tmp_path: Path, example_text: str) -> Path:
    (tmp_path / "platform.yaml").write_text(example_text)
    return tmp_path


def test_cli_diff_against_build_dir(project: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(project)
    assert main(["render"]) == 0
    (project / "platform.yaml").write_text(add_dave((project / "platform.yaml").read_text()))
    capsys.readouterr()
    assert main(["diff"]) == 0
    out = capsys.readouterr().out
    assert "~ hub/" in out and "dave" in out
    assert main(["diff", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["summary"]["files_changed"] >= 1


def test_cli_diff_against_git_ref(project: Path, capsys, monkeypatch) -> None:
    if shutil.which("git") is None:
        pytest.fail("git is needed for `platform diff --against GIT_REF`")
    monkeypatch.chdir(project)
    environment = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                   "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(project), "PATH": "/usr/bin:/bin"}
    for command in (["init", "-q"], ["add", "platform.yaml"], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", *command], cwd=project, env=environment, check=True)
    (project / "platform.yaml").write_text(bigger_large((project / "platform.yaml").read_text()))
    capsys.readouterr()
    assert main(["diff", "--against", "HEAD", "--target", "aws"]) == 0
    out = capsys.readouterr().out
    assert "~ workers/large.json" in out
    assert '~ instance_type: "m6i.4xlarge" -> "m6i.8xlarge"' in out
    assert "~ terraform/aws/main.tf.json" in out
    assert main(["diff", "--against", "no-such-ref"]) == 2
    assert "neither a directory nor a git revision" in capsys.readouterr().err


def test_cli_diff_without_build_dir_says_what_to_do(project: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(project)
    assert main(["diff"]) == 2
    assert "platform render" in capsys.readouterr().err
