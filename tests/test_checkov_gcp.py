"""checkov over the rendered GCP stack: no failed check except checkov/gcp.yaml's skip list.

One checkov run covers both egress modes, long names without a domain, and a deliberately broken copy (an external IP
and an open SSH rule), which must fail: proof that the scan really reads our JSON.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.checkov import checkov_command
from tests.support.gcp_render import VARIANTS, stack

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "checkov" / "gcp.yaml"


def _broken(stack: dict) -> dict:
    resource = stack["resource"]
    hub = resource["google_compute_instance"]["hub"]
    hub["network_interface"][0]["access_config"] = [{}]
    resource["google_compute_firewall"]["ssh_from_anywhere"] = {
        "name": "ssh", "network": "x", "direction": "INGRESS",
        "allow": [{"protocol": "tcp", "ports": ["22"]}], "source_ranges": ["0.0.0.0/0"],
    }
    return stack


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, set[str]]]:
    """stack name -> {"failed": check ids, "passed": check ids}, from one checkov run."""
    root = tmp_path_factory.mktemp("checkov-gcp")
    stacks = {variant: stack(variant) for variant in VARIANTS}
    stacks["broken"] = _broken(json.loads(json.dumps(stacks["nat"])))
    for name, rendered in stacks.items():
        (root / name).mkdir()
        (root / name / "main.tf.json").write_text(json.dumps(rendered, indent=2))
    result = subprocess.run(
        [*checkov_command(), "--config-file", str(CONFIG), "-d", str(root), "-o", "json"],
        capture_output=True, text=True, timeout=300, cwd=root,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["summary"]["parsing_errors"] == 0
    found: dict[str, dict[str, set[str]]] = {name: {"failed": set(), "passed": set()} for name in stacks}
    for outcome in ("failed", "passed"):
        for check in report["results"][f"{outcome}_checks"]:
            stack_name = Path(check["file_path"].lstrip("/")).parts[0]
            found[stack_name][outcome].add(f"{check['check_id']} {check['resource']}")
    return found


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rendered_stack_passes_checkov(scan, variant: str) -> None:
    assert scan[variant]["failed"] == set()
    passed = {entry.split()[0] for entry in scan[variant]["passed"]}
    # The checks that guard the design itself ran and passed.
    assert {"CKV_GCP_39", "CKV_GCP_40", "CKV_GCP_32", "CKV_GCP_38", "CKV_GCP_29", "CKV_GCP_114"} <= passed


def test_checkov_catches_an_external_ip_and_open_ssh(scan) -> None:
    failed = {entry.split()[0] for entry in scan["broken"]["failed"]}
    assert {"CKV_GCP_40", "CKV_GCP_2"} <= failed


def test_skip_list_is_short_and_every_entry_says_why() -> None:
    lines = CONFIG.read_text().splitlines()
    start = lines.index("skip-check:")
    entries = [index for index in range(start + 1, len(lines)) if lines[index].strip().startswith("- ")]
    assert 0 < len(entries) <= 5
    for index in entries:
        assert lines[index - 1].strip().startswith("#"), f"no reason above {lines[index].strip()}"
