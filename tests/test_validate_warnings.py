"""Warnings vs errors in `platform validate`: warnings print and exit 0, `--strict` makes
them exit 2, `--json` carries each issue's severity, and warnings found next to errors
are shown with them (the library's ConfigErrors keeps them apart, for render's callers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.cli.main import main
from render.errors import ConfigErrors
from render.validate import validate_text
from tests.conftest import REPO

EXAMPLE = (REPO / "platform.yaml").read_text()
HUB_TOO_SMALL = EXAMPLE.replace("target: local ", "target: aws   ").replace("aws: t3.large,", "aws: t3.micro,")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    return path


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_json_warning_only(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = str(_write(tmp_path, HUB_TOO_SMALL))
    assert main(["validate", "--json", path]) == 0
    report = _json(capsys)
    assert report["valid"] is True and report["errors"] == []
    (warning,) = report["warnings"]
    assert warning["severity"] == "warning" and warning["path"] == "hub.instance.aws"
    assert (warning["line"], warning["col"]) == (32, 20)


def test_json_strict_fails_on_warnings(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = str(_write(tmp_path, HUB_TOO_SMALL))
    assert main(["validate", "--json", "--strict", path]) == 2
    report = _json(capsys)
    assert report["valid"] is False and [w["severity"] for w in report["warnings"]] == ["warning"]


def test_strict_on_a_clean_file_passes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["validate", "--strict", str(_write(tmp_path, EXAMPLE))]) == 0
    assert capsys.readouterr().out.startswith("OK: oceanlab")
    assert main(["validate", "--strict", "--json", str(tmp_path / "platform.yaml")]) == 0
    assert _json(capsys)["warnings"] == []


def test_errors_and_warnings_together(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = HUB_TOO_SMALL.replace("    cpu: 16\n", "    cpu: 32\n")
    path = str(_write(tmp_path, text))
    assert main(["validate", path]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[1] for line in lines] == ["hub.instance.aws", "profiles.large.cpu"]  # file order
    assert ": warning: " in lines[0] and ": warning: " not in lines[1]
    assert main(["validate", "--json", path]) == 2
    report = _json(capsys)
    assert [(e["path"], e["severity"]) for e in report["errors"]] == [("profiles.large.cpu", "error")]
    assert [(w["path"], w["severity"]) for w in report["warnings"]] == [("hub.instance.aws", "warning")]


def test_library_errors_keep_warnings_apart() -> None:
    with pytest.raises(ConfigErrors) as raised:
        validate_text(HUB_TOO_SMALL.replace("    cpu: 16\n", "    cpu: 32\n"))
    assert [issue.field for issue in raised.value.issues] == ["profiles.large.cpu"]
    assert [issue.field for issue in raised.value.warnings] == ["hub.instance.aws"]


def test_warnings_do_not_stop_render(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = str(_write(tmp_path, HUB_TOO_SMALL))
    assert main(["render", path, "--out", str(tmp_path / "build")]) == 0
    assert (tmp_path / "build" / "manifest.json").is_file()


def test_pull_request_comment_lists_warnings(tmp_path: Path) -> None:
    """The CI snapshot keeps a warned-about platform.yaml valid (the plan still runs) and
    the comment lists the warnings, located; the workflow's `validate --strict` fails it."""
    from deploy.gitops import ci
    from deploy.gitops.comment import render_comment
    from deploy.gitops.snapshot import read

    source = tmp_path / "src"
    source.mkdir()
    (source / "platform.yaml").write_text(HUB_TOO_SMALL)
    assert ci.snapshot(source, tmp_path / "head") is True
    validation = json.loads((tmp_path / "head" / "validation.json").read_text())
    assert validation["valid"] is True
    assert [(w["path"], w["severity"]) for w in validation["warnings"]] == [("hub.instance.aws", "warning")]
    comment = render_comment(read(None), read(tmp_path / "head"))
    assert "platform.yaml is valid, with warnings" in comment
    assert "`platform.yaml:32:20`: `hub.instance.aws`: warning: t3.micro (2 vCPUs, 1GiB) is too small" in comment


def test_workflow_fails_on_warnings_with_strict() -> None:
    from deploy.gitops.workflows import workflow_files
    from render.validate import validate_text as load

    workflow = workflow_files(load(EXAMPLE))[".github/workflows/platform-pr.yml"]
    assert "platform validate --strict platform.yaml > /dev/null" in workflow
