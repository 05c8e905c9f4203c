"""deploy.terraform: finding the provider mirror, the CLI config it writes, and failures
summarised in a few lines with the full log kept on disk (real terraform CLI)."""

from __future__ import annotations

import json
import shutil

import pytest

from deploy.terraform import (
    PLUGIN_DIR_ENV,
    Terraform,
    TerraformError,
    cli_config,
    find_provider_mirror,
    platform_dir,
    summarize,
)


def _unpacked(root, provider="hashicorp/aws", version="5.100.0"):
    path = root / "registry.terraform.io" / provider / version / platform_dir()
    path.mkdir(parents=True)
    (path / f"terraform-provider-{provider.split('/')[1]}_v{version}_x5").write_bytes(b"")
    return root


def test_mirror_found_in_env_first_then_roots(tmp_path):
    env_dir, root, empty = _unpacked(tmp_path / "env"), _unpacked(tmp_path / "root"), tmp_path / "empty"
    empty.mkdir()
    assert find_provider_mirror(roots=[empty, root], env={}) == root.resolve()
    assert find_provider_mirror(roots=[root], env={PLUGIN_DIR_ENV: str(env_dir)}) == env_dir.resolve()
    assert find_provider_mirror(roots=[empty], env={}) is None
    # A mirror without the provider asked for does not count.
    assert find_provider_mirror(("hashicorp/google",), roots=[root], env={}) is None


def test_packed_mirror_layout_counts(tmp_path):
    base = tmp_path / "registry.terraform.io" / "hashicorp" / "aws"
    base.mkdir(parents=True)
    (base / f"terraform-provider-aws_5.100.0_{platform_dir()}.zip").write_bytes(b"")
    assert find_provider_mirror(roots=[tmp_path], env={}) == tmp_path.resolve()


def test_cli_config_installs_from_the_mirror_only(tmp_path):
    text = cli_config(tmp_path)
    assert "filesystem_mirror" in text and json.dumps(str(tmp_path)) in text
    assert "direct" not in text


def test_summary_keeps_the_error_blocks():
    output = (
        "Initializing...\n"
        "╷\n│ Error: Unsupported argument\n│ \n│   on main.tf.json line 3:\n"
        "│ An argument named \"nope\" is not expected here.\n╵\n"
    )
    summary = summarize(output)
    assert summary.splitlines()[0] == "Error: Unsupported argument"
    assert "main.tf.json line 3" in summary and "╷" not in summary


@pytest.mark.skipif(shutil.which("terraform") is None, reason="the terraform CLI is not installed")
def test_failure_is_short_and_the_log_is_kept(tmp_path, monkeypatch):
    # The machine's own TF_CLI_CONFIG_FILE may point at a missing file: the runner's wins.
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(tmp_path / "missing.rc"))
    (tmp_path / "main.tf.json").write_text('{"resource": {"null_thing": "not a block"}}')
    tf = Terraform(tmp_path, state_dir=tmp_path / "runner", mirror=tmp_path)
    assert tf.env["TF_CLI_CONFIG_FILE"] == str(tmp_path / "runner" / "terraform.rc")
    with pytest.raises(TerraformError) as caught:
        tf.init(backend=False)
    error = caught.value
    assert error.log is not None and error.log.is_file()
    assert "Error:" in error.summary and len(error.summary.splitlines()) <= 8
    assert "-input=false" in error.log.read_text()
    assert str(error).startswith("terraform init failed")
