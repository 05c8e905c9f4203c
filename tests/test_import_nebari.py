"""`platform import nebari` over a corpus of Nebari configs written from Nebari's schema
(final release 2025.10.1) and QHub 0.3's: each imports, the result validates and renders
for its target, and the report names every key it dropped."""

from __future__ import annotations

import pytest

from deploy.build_dir import load_for_target
from render.build import render
from render.validate import load_platform
from tests.support.nebari_import import (
    CORPUS,
    REALM,
    dropped_keys,
    leaf_paths,
    load_yaml,
    mapped_sources,
    run_import,
    section,
)

# file, extra flags, target, keys the report must list as dropped (with every file's own)
CASES = {
    "aws": (
        "aws-2025.10.yaml",
        [],
        "aws",
        [
            "namespace",
            "certificate",
            "dns",
            "terraform_state",
            "default_images",
            "storage",
            "theme",
            "amazon_web_services.kubernetes_version",
            "amazon_web_services.node_groups.worker.min_nodes",
            "amazon_web_services.node_groups.worker.max_nodes",
            "amazon_web_services.node_groups.gpu-t4.taints",
            "profiles.jupyterlab[2].kubespawner_override.image",
            "profiles.jupyterlab[3].profile_options",
            "profiles.jupyterlab[0].kubespawner_override.cpu_guarantee",
            'profiles.dask_worker["Small Worker"].worker_memory',
            "security.authentication.config.client_secret",
            "security.keycloak",
            "conda_store",
            "argo_workflows",
            "jhub_apps",
            "monitoring",
            "jupyterhub",
            "tf_extensions",
            "helm_extensions",
            'environments["environment-dask.yaml"].channels',
            'environments["environment-dask.yaml"].dependencies[2]',
            'environments["environment-dask.yaml"].dependencies[9]',
            'environments["environment-ml.yaml"].dependencies[4]',
        ],
    ),
    "aws+keycloak": ("aws-2025.10.yaml", ["--keycloak-export", str(REALM)], "aws", ["keycloak user 'eve'"]),
    "gcp": (
        "gcp-2025.10.yaml",
        ["--github-org", "unused"],
        "gcp",
        [
            "google_cloud_platform.kubernetes_version",
            "google_cloud_platform.node_groups.gpu-v100x2.labels",
            "security.authentication.config.client_secret",
            'environments["environment-geo.yaml"].dependencies[5]',
        ],
    ),
    "qhub-0.4": (
        "qhub-0.4.yaml",
        [],
        "gcp",
        [
            "security.keycloak",
            "security.authentication.config.client_secret",
            "security.authentication.config.oauth_callback_url",
            'environments["environment-dask.yaml"].dependencies[2]',
            "google_cloud_platform.kubernetes_version",
        ],
    ),
    "qhub-0.3": (
        "qhub-0.3.yaml",
        [],
        "aws",
        [
            "security.users.dharhas.password",
            "security.users.example-user.uid",
            "security.groups.users.gid",
            "cdsdashboards",
            "default_images",
            'profiles.dask_worker["Small Worker"].image',
        ],
    ),
    "local": (
        "local-defaults.yaml",
        ["--admin", "alice"],
        "local",
        [
            "local.kube_context",
            "local.node_selectors",
            "theme",
            "security.keycloak",
            "certificate",
        ],
    ),
    "azure->aws": (
        "azure-2025.10.yaml",
        ["--target", "aws", "--account-id", "123456789012"],
        "aws",
        [
            "azure.kubernetes_version",
            "azure.node_groups",
            "azure.storage_account_postfix",
        ],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_corpus_imports_validates_renders_and_reports_every_dropped_key(tmp_path, capsys, case) -> None:
    name, flags, target, must_drop = CASES[case]
    code, report, err, out = run_import(tmp_path, capsys, name, *flags)
    assert code == 0, err
    platform = load_platform(out)
    assert platform.target == target
    files = render(load_for_target(out, str(out), target), target)
    assert f"workers/{next(iter(platform.profiles))}.json" in files
    dropped = dropped_keys(report)
    for key in must_drop:
        assert key in dropped, f"{key} not reported as dropped:\n{report}"
    # Nothing silent: each leaf of the Nebari file is under a key the report names as
    # mapped or as dropped.
    named = [*mapped_sources(report), *dropped]
    source = load_yaml((CORPUS / name).read_text())
    for leaf in leaf_paths(source):
        assert any(leaf == key or leaf.startswith((key + ".", key + "[")) for key in named), (
            f"{leaf} neither mapped nor reported dropped:\n{report}"
        )


def test_aws_node_groups_gpus_and_sizes(tmp_path, capsys) -> None:
    code, report, _, out = run_import(tmp_path, capsys, "aws-2025.10.yaml")
    assert code == 0
    data = load_yaml(out.read_text())
    profiles = data["profiles"]
    assert profiles["small-instance"] == {
        "cpu": 2,
        "memory": "8GiB",
        "instance": {"aws": "m5.xlarge"},
        "price_per_hour_usd": 0.192,
    }
    # `dedicated: worker`, a group of three types: the smallest that fits 8 CPU / 28 GiB, spot kept
    assert profiles["large-instance"]["cpu"] == 8  # 7.5 rounded up, and said so
    assert "7.5 CPUs rounded up to 8" in report
    assert profiles["large-instance"]["instance"] == {"aws": "m5.2xlarge"} and profiles["large-instance"]["spot"]
    assert profiles["large-worker"]["instance"] == {"aws": "m5.2xlarge"}
    assert profiles["gpu-t4"]["gpu"] == {"count": 1, "type": "nvidia-t4"}
    assert profiles["gpu-t4"]["instance"] == {"aws": "g4dn.2xlarge"}
    assert profiles["gpu-a10g"] == {  # named through EKS's own nodegroup label; 56Gi
        "cpu": 14,
        "memory": "56GiB",
        "instance": {"aws": "g5.4xlarge"},
        "gpu": {"count": 1, "type": "nvidia-a10g"},
    }
    assert profiles["gpu-worker"]["gpu"] == {"count": 1, "type": "nvidia-t4"}
    assert data["hub"]["instance"] == {"aws": "m5.2xlarge"}  # the `general` group
    assert data["hub"]["idle_timeout"] == "45m"
    assert data["dask"] == {"default_profile": "small-worker", "idle_timeout": "30m"}
    assert data["cloud"]["aws"]["zones"] == 3 and data["cloud"]["aws"]["vpc_cidr"] == "10.20.0.0/16"
    env = data["environments"]
    assert env["dask"]["python"] == "3.11"
    assert env["dask"]["packages"] == [
        "ipykernel==6.26.0",
        "dask",
        "graphviz==0.20.1",
        "numpy==1.26.*",
        "pandas>=2.1,<3",
        "xarray==2023.10.*",
        "zarr==2.16.1.*",
        "noaa-coops==0.1.9",
    ]
    assert env["ml"] == {"python": "3.11", "packages": ["torch==2.1.*", "scikit-learn", "xgboost>=1.7"]}
    assert "python 3.9 raised to 3.11" in report
    # profile access: yaml groups -> groups' profiles; keycloak -> admins only, said so
    assert "large-instance" in data["groups"]["developer"]["profiles"]
    assert "large-instance" not in data["groups"]["analyst"]["profiles"]
    assert "gpu-a10g" in data["groups"]["developer"]["profiles"]
    assert "gpu-t4" in data["groups"]["admin"]["profiles"] and "gpu-t4" not in data["groups"]["developer"]["profiles"]


def test_placeholders_are_marked_and_secrets_never_copied(tmp_path, capsys) -> None:
    code, report, _, out = run_import(tmp_path, capsys, "aws-2025.10.yaml")
    assert code == 0
    text = out.read_text()
    for line in (
        "account_id: '000000000000'",
        "org: change-me",
        "repository: change-me/platform",
        "state_bucket: ocean-lab-tfstate",
        "- name: admin",
    ):
        marked = [row for row in text.splitlines() if line in row]
        assert marked and "# TODO(import):" in marked[0], line
    assert "${" not in text and "GITHUB_CLIENT_SECRET" not in text
    assert "GITHUB_CLIENT_SECRET" in report.split("Secrets to put")[1]
    code, report, _, out = run_import(tmp_path, capsys, "gcp-2025.10.yaml", "--force")
    assert code == 0
    assert "hunter2" not in out.read_text() and "hunter2" not in report
    code, _, _, out = run_import(
        tmp_path,
        capsys,
        "aws-2025.10.yaml",
        "--force",
        "--account-id",
        "123456789012",
        "--github-org",
        "oceanlab",
        "--ci-repository",
        "oceanlab/platform",
        "--state-bucket",
        "oceanlab-state",
    )
    data = load_yaml(out.read_text())
    assert data["cloud"]["aws"]["account_id"] == "123456789012"
    assert data["hub"]["auth"]["github"]["org"] == "oceanlab" and data["ci"]["repository"] == "oceanlab/platform"
    assert "account_id" not in "".join(r for r in out.read_text().splitlines() if "TODO" in r)


def test_gcp_guest_accelerators_preemptible_and_auth0(tmp_path, capsys) -> None:
    code, _, _, out = run_import(tmp_path, capsys, "gcp-2025.10.yaml")
    assert code == 0
    data = load_yaml(out.read_text())
    assert data["name"] == "geo-sci"
    assert data["cloud"]["gcp"]["project"] == "geosci-nebari-prod"
    assert data["hub"]["auth"] == {
        "provider": "oidc",
        "oidc": {"issuer": "https://geosci.auth0.com/", "client_id": "aBcDeF0123456789"},
    }
    profiles = data["profiles"]
    assert profiles["standard"]["cpu"] == 4 and profiles["standard"]["instance"] == {"gcp": "e2-standard-4"}
    assert profiles["t4-notebook"]["gpu"] == {"count": 1, "type": "nvidia-t4"}
    assert profiles["t4-notebook"]["instance"] == {"gcp": "n1-standard-8"}
    assert profiles["v100-pair"]["gpu"] == {"count": 2, "type": "nvidia-v100"} and profiles["v100-pair"]["spot"]
    assert profiles["worker"]["spot"] and profiles["worker"]["instance"] == {"gcp": "n2-standard-8"}
    assert data["environments"]["geo"] == {
        "python": "3.12",
        "packages": ["geopandas>=0.14", "rioxarray", "GDAL", "distributed"],
    }


def test_qhub_secrets_placeholders_name_their_variables(tmp_path, capsys) -> None:
    code, report, _, out = run_import(tmp_path, capsys, "qhub-0.4.yaml")
    assert code == 0
    text = out.read_text()
    assert "QHUB_SECRET" not in text
    assert "client_id: change-me  # TODO(import): the OAuth client id (Nebari read it from github_client_id)" in text
    assert "github_client_secret" in section(report, "Secrets")[0]
    assert "ci_cd.type gitlab-ci: the generated workflows are GitHub Actions" in report


def test_qhub_users_and_groups_come_from_the_file(tmp_path, capsys) -> None:
    code, report, _, out = run_import(tmp_path, capsys, "qhub-0.3.yaml")
    assert code == 0
    data = load_yaml(out.read_text())
    users = {user["name"]: user for user in data["users"]}
    assert set(users) == {"example-user", "dharhas", "jane-doe"}
    assert "'Jane.Doe' is now 'jane-doe'" in report
    assert data["groups"]["admin"]["admin"] is True and users["dharhas"]["groups"] == ["admin"]
    # `users: [example-user]` on a profile: a group of its own grants it
    assert "small-instance-users" in users["example-user"]["groups"]
    assert data["groups"]["small-instance-users"]["profiles"] == ["small-instance"]
    assert "small-instance" not in data["groups"]["users"]["profiles"]
    assert set(data["budgets"]) == {"users", "admin", "billing"}
    assert "$2b$" not in out.read_text()
    assert "qhub-dask" not in out.read_text()


def test_local_without_profiles_or_environments_gets_nebaris_defaults(tmp_path, capsys) -> None:
    code, report, _, out = run_import(tmp_path, capsys, "local-defaults.yaml", "--admin", "alice")
    assert code == 0
    data = load_yaml(out.read_text())
    assert "cloud" not in data and data["target"] == "local"
    assert data["profiles"] == {
        "small-instance": {"cpu": 2, "memory": "8GiB"},
        "medium-instance": {"cpu": 4, "memory": "16GiB"},
        "small-worker": {"cpu": 2, "memory": "8GiB"},
        "medium-worker": {"cpu": 4, "memory": "16GiB"},
    }
    assert set(data["environments"]) == {"dask", "dashboard"}
    assert "nodejs" not in str(data["environments"]) and "(Nebari default)" in report
    assert data["users"] == [{"name": "alice", "groups": ["admin"]}]
    assert "imported as target local" in report


def test_keycloak_export_brings_users_groups_and_admins(tmp_path, capsys) -> None:
    code, _, _, out = run_import(tmp_path, capsys, "aws-2025.10.yaml", "--keycloak-export", str(REALM))
    assert code == 0
    data = load_yaml(out.read_text())
    users = {user["name"]: user for user in data["users"]}
    assert set(users) == {"alice", "bob", "carol", "dave-smith"}  # eve is disabled, services are not people
    assert users["alice"]["email"] == "alice@oceanlab.org" and "admin" in users["alice"]["groups"]
    assert data["groups"]["admin"]["admin"] and data["groups"]["superadmin"]["admin"]
    assert users["dave-smith"]["groups"] == ["analyst"]  # no group: Keycloak's default
    assert users["alice"]["budget"] == "analyst"  # two budgeted groups: one must pay
    # `access: keycloak`: the groups whose jupyterlab_profiles attribute names the profile
    assert "gpu-t4" in data["groups"]["ocean_models"]["profiles"]
    assert "gpu-t4" not in data["groups"]["analyst"]["profiles"]
    assert "large-instance-users" in users["carol"]["groups"]
    assert "c2VjcmV0" not in out.read_text()


def test_azure_is_refused_located_unless_a_target_is_given(tmp_path, capsys) -> None:
    code, _, err, out = run_import(tmp_path, capsys, "azure-2025.10.yaml")
    assert code == 2 and not out.exists()
    assert "azure-2025.10.yaml:3:11: provider:" in err and "--target aws" in err and "Traceback" not in err
    code, report, _, out = run_import(tmp_path, capsys, "azure-2025.10.yaml", "--target", "gcp")
    assert code == 0
    data = load_yaml(out.read_text())
    assert data["profiles"]["small-instance"]["instance"] == {"gcp": "n2-standard-2"}
    assert "chosen by size" in out.read_text() and "chosen by size" in report
