"""`target_for` picks the target from platform.yaml; every target offers the whole
`Target` protocol, and what a target cannot do yet is a located user error (exit 2)."""

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
    assert set(OPERATIONS) == {"plan", "preview", "apply", "destroy", "up", "down", "status", "log_path", "token"}
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


@pytest.mark.parametrize("operation", ["up", "down", "status", "token", "log_path"])
def test_the_cloud_runtime_commands_say_they_run_the_local_target(example_text, operation):
    cloud = target_for(validate_text(example_text.replace("target: local ", "target: aws   ")), Path("p.yaml"))
    arguments = {"token": ("alice",), "log_path": ("hub",)}.get(operation, ())
    with pytest.raises(UserError, match="runs the local target"):
        getattr(cloud, operation)(*arguments)
