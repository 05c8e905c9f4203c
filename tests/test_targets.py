"""`target_for` picks the target from platform.yaml; every target offers the whole
`Target` protocol, and what a target cannot do (yet) is a user error (exit 2) that says
what to do instead."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from deploy.errors import UserError
from deploy.targets import CloudTarget, LocalTarget, Target, target_for
from render.validate import validate_text

OPERATIONS = [name for name, _ in inspect.getmembers(Target, inspect.isfunction) if not name.startswith("_")]


@pytest.mark.parametrize(("target", "kind"), [("local", LocalTarget), ("aws", CloudTarget), ("gcp", CloudTarget)])
def test_the_target_comes_from_the_file_and_offers_every_operation(example_text, target, kind):
    platform = validate_text(example_text.replace("target: local ", f"target: {target:<6}"))
    chosen = target_for(platform, Path("platform.yaml"), state="/tmp/somewhere")
    assert type(chosen) is kind and chosen.name == target
    assert set(OPERATIONS) == {"plan", "preview", "apply", "destroy", "up", "down", "status", "log_path", "logs",
                               "token"}
    for operation in OPERATIONS:
        ours = inspect.signature(getattr(chosen, operation)).parameters
        assert list(ours) == [p for p in inspect.signature(getattr(Target, operation)).parameters if p != "self"]


def test_the_local_target_has_nothing_to_plan_and_needs_no_confirmation(example_text, tmp_path):
    platform = validate_text(example_text)
    local = target_for(platform, Path("platform.yaml"), state=str(tmp_path))
    summary = local.plan(lambda _: None)
    assert summary["has_changes"] is False and summary["target"] == "local"
    assert local.preview(lambda _: None).needs_confirmation is False
    assert local.state_dir == tmp_path


@pytest.mark.parametrize(("operation", "instead"), [("up", "platform apply"), ("down", "platform destroy")])
@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_up_and_down_on_a_cloud_target_say_what_to_run_instead(example_text, cloud, operation, instead):
    target = target_for(validate_text(example_text.replace("target: local ", f"target: {cloud:<6}")), Path("p.yaml"))
    with pytest.raises(UserError, match=f"targets {cloud}: `{instead}`"):
        getattr(target, operation)()


@pytest.mark.parametrize(("cloud", "operation"), [("aws", "status"), ("aws", "token"), ("aws", "logs"),
                                                  ("gcp", "status"), ("gcp", "token"), ("gcp", "logs")])
def test_the_runtime_commands_of_a_cloud_need_the_outputs_of_apply(example_text, cloud, operation, tmp_path):
    target = target_for(validate_text(example_text.replace("target: local ", f"target: {cloud:<6}")), Path("p.yaml"),
                        out=str(tmp_path / "build"))
    with pytest.raises(UserError, match=r"outputs\.json: run `platform apply` first"):
        _run(target, operation)


def _run(target, operation: str) -> None:
    if operation == "logs":
        list(target.logs("hub", lines=10, follow=False))
    else:
        getattr(target, operation)(*(("alice",) if operation == "token" else ()))
