"""`platform import nebari` on edge cases: refusals and bad input (exit 2, located, nothing
written), never overwriting, determinism, keys nobody knows, pod settings."""

from __future__ import annotations

import pytest

from deploy.cli.main import main
from tests.support.nebari_import import CORPUS, dropped_keys, load_yaml, run_import


def test_never_overwrites_without_force_and_is_deterministic(tmp_path, capsys) -> None:
    out = tmp_path / "platform.yaml"
    out.write_text("precious\n")
    code, _, err, _ = run_import(tmp_path, capsys, "gcp-2025.10.yaml")
    assert code == 2 and "--force" in err and out.read_text() == "precious\n"
    assert run_import(tmp_path, capsys, "gcp-2025.10.yaml", "--force")[0] == 0
    first = out.read_text()
    assert run_import(tmp_path, capsys, "gcp-2025.10.yaml", "--force")[0] == 0
    assert out.read_text() == first


def test_unknown_keys_are_reported_never_silent(tmp_path, capsys) -> None:
    config = tmp_path / "nebari-config.yaml"
    text = (CORPUS / "local-defaults.yaml").read_text()
    config.write_text(text + "my_extension:\n  enabled: true\n")
    out = tmp_path / "platform.yaml"
    assert main(["import", "nebari", str(config), "-o", str(out)]) == 0
    assert "my_extension" in dropped_keys(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("project_name: x\nprovider: [aws\n", "nebari-config.yaml:3:1: (yaml)"),
        ("- just\n- a list\n", "nebari-config.yaml:1:1: (root)"),
        ("hello: world\n", "not a Nebari or QHub config"),
        ("project_name: x\nprovider: openstack\n", "nebari-config.yaml:2:11: provider: unknown Nebari provider"),
        (
            "project_name: x\nprovider: local\nprofiles:\n  jupyterlab:\n    - display_name: A\n      description: a\n"
            "      kubespawner_override: {cpu_limit: 1, mem_limit: lots}\n",
            "is not a memory size",
        ),
    ],
)
def test_bad_input_is_exit_2_with_a_location_never_a_traceback(tmp_path, capsys, text, where) -> None:
    config = tmp_path / "nebari-config.yaml"
    config.write_text(text)
    code = main(["import", "nebari", str(config), "-o", str(tmp_path / "platform.yaml")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert where in err and "Traceback" not in err
    assert not (tmp_path / "platform.yaml").exists()


def test_bad_realm_export_is_located(tmp_path, capsys) -> None:
    realm = tmp_path / "realm.json"
    realm.write_text('{"realm": "nebari",\n "users": [}\n')
    code, _, err, out = run_import(tmp_path, capsys, "local-defaults.yaml", "--keycloak-export", str(realm))
    assert code == 2 and f"{realm}:2:" in err and not out.exists()


def test_existing_cluster_becomes_local_and_digitalocean_is_refused(tmp_path, capsys) -> None:
    config = tmp_path / "nebari-config.yaml"
    config.write_text("project_name: prod\nprovider: existing\nexisting:\n  kube_context: prod-ctx\n")
    out = tmp_path / "platform.yaml"
    assert main(["import", "nebari", str(config), "-o", str(out), "--admin", "root"]) == 0
    report = capsys.readouterr().out
    assert load_yaml(out.read_text())["target"] == "local"
    assert "an existing Kubernetes cluster" in report and "existing" in dropped_keys(report)
    config.write_text("project_name: qhub-do\nprovider: do\ndigital_ocean:\n  region: nyc3\n")
    assert main(["import", "nebari", str(config), "-o", str(tmp_path / "do.yaml")]) == 2
    assert "nebari-config.yaml:2:11: provider:" in capsys.readouterr().err


def test_another_cloud_sizes_profiles_and_keeps_spot_and_says_what_gpu_changed(tmp_path, capsys) -> None:
    code, report, _, out = run_import(tmp_path, capsys, "gcp-2025.10.yaml", "--target", "aws")
    assert code == 0
    data = load_yaml(out.read_text())
    pair = data["profiles"]["v100-pair"]
    assert pair["spot"] is True and pair["gpu"]["count"] == 2
    assert pair["instance"]["aws"].startswith("g")  # a GPU type, chosen by size
    assert "Nebari's GPU was nvidia-v100; nvidia-t4 chosen by size" in report
    assert "google_cloud_platform.node_groups" in dropped_keys(report)
    assert data["cloud"]["aws"]["region"] == "us-east-1" and "--region" in out.read_text()


POD_SETTINGS = """\
project_name: podstuff
provider: aws
amazon_web_services:
  region: us-west-2
  kubernetes_version: "1.31"
profiles:
  jupyterlab:
    - display_name: GPU
      description: asks for a GPU on a group without one
      kubespawner_override:
        cpu_limit: 4
        mem_limit: 16G
        extra_resource_limits: {nvidia.com/gpu: 1, example.com/fpga: 1}
        environment: {FOO: bar}
        node_selector: {dedicated: worker}
  dask_worker:
    W:
      worker_cores_limit: 2
      worker_memory_limit: 4G
      worker_extra_container_config:
        env: [{name: A, value: b}]
        resources: {limits: {nvidia.com/gpu: 1}}
      worker_extra_pod_config:
        tolerations: [{key: x}]
"""


def test_pod_settings_are_reported_and_a_gpu_without_a_gpu_group_is_sized(tmp_path, capsys) -> None:
    config = tmp_path / "nebari-config.yaml"
    config.write_text(POD_SETTINGS)
    out = tmp_path / "platform.yaml"
    assert main(["import", "nebari", str(config), "-o", str(out)]) == 0
    report = capsys.readouterr().out
    dropped = dropped_keys(report)
    for key in (
        'profiles.jupyterlab[0].kubespawner_override.extra_resource_limits["example.com/fpga"]',
        "profiles.jupyterlab[0].kubespawner_override.environment",
        "profiles.dask_worker.W.worker_extra_container_config.env",
        "profiles.dask_worker.W.worker_extra_pod_config",
    ):
        assert key in dropped, key
    data = load_yaml(out.read_text())
    assert data["profiles"]["gpu"]["instance"]["aws"].startswith("g4dn.")
    assert data["profiles"]["gpu"]["gpu"] == {"count": 1, "type": "nvidia-t4"}
    assert "node group 'worker' has none" in report and "names no GPU model" in out.read_text()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--budget-usd", "0"], "--budget-usd and --budget-max-cores must be greater than zero"),
        (["--keycloak-export", str(CORPUS / "nebari-realm.json"), "--admin", "root"], "--admin is for imports"),
        (["--keycloak-export", str(CORPUS / "missing.json")], "missing.json:1:1: (file): no such file"),
    ],
)
def test_bad_flags_are_exit_2_and_write_nothing(tmp_path, capsys, flags, message) -> None:
    code, _, err, out = run_import(tmp_path, capsys, "local-defaults.yaml", *flags)
    assert code == 2 and message in err and not out.exists()
