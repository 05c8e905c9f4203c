"""`platform upgrade` and apiVersion handling."""

from __future__ import annotations

import pytest

from deploy.cli.main import main
from render import upgrade


def test_current_version_is_left_alone(tmp_path, example_text, capsys):
    current = example_text.replace("apiVersion: graticule/v1", "apiVersion: graticule/v2")
    path = tmp_path / "platform.yaml"
    path.write_text(current)
    assert main(["upgrade", str(path)]) == 0
    assert "already graticule/v2" in capsys.readouterr().out
    assert path.read_text() == current


def test_v1_is_still_valid_and_upgrades_to_v2_which_may_declare_jobs(tmp_path, example_text, capsys):
    path = tmp_path / "platform.yaml"
    path.write_text(example_text)
    assert main(["validate", str(path)]) == 0  # the v1 contract validates as written
    assert main(["upgrade", str(path)]) == 0
    upgraded = path.read_text()
    assert "apiVersion: graticule/v2" in upgraded and "graticule/v1" not in upgraded
    assert "# a personal budget wins over the group's" in upgraded  # comments kept
    assert (tmp_path / "platform.yaml.graticule-v1.bak").read_text() == example_text
    path.write_text(upgraded + "jobs:\n  daily:\n    owner: alice\n    run: {script: daily.py}\n")
    assert main(["validate", str(path)]) == 0


def test_unknown_version_is_a_located_error(tmp_path, example_text, capsys):
    path = tmp_path / "platform.yaml"
    path.write_text(example_text.replace("apiVersion: graticule/v1", "apiVersion: graticule/v0"))
    assert main(["upgrade", str(path)]) == 2
    assert f"{path}:6:13: apiVersion: unknown apiVersion 'graticule/v0'" in capsys.readouterr().err


@pytest.fixture
def legacy_migration(monkeypatch):
    """v1 is the only real version, so the chain is exercised with a made-up older one
    (`graticule/v0`, where `dask.max_workers` was called `worker_limit`)."""

    def rename_worker_limit(tree):
        dask = tree["dask"]
        position = list(dask).index("worker_limit")
        dask.insert(position, "max_workers", dask.pop("worker_limit"))

    monkeypatch.setitem(upgrade.MIGRATIONS, "graticule/v0", ("graticule/v1", rename_worker_limit))


def test_older_version_is_upgraded_in_place_with_backup(tmp_path, example_text, legacy_migration, capsys):
    old = example_text.replace("apiVersion: graticule/v1", "apiVersion: graticule/v0").replace(
        "  max_workers: 100 ", "  worker_limit: 100 "
    )
    path = tmp_path / "platform.yaml"
    path.write_text(old)
    assert main(["validate", str(path)]) == 2
    assert "run `platform upgrade`" in capsys.readouterr().err
    assert main(["upgrade", str(path)]) == 0
    upgraded = path.read_text()
    assert "apiVersion: graticule/v2" in upgraded and "worker_limit" not in upgraded
    assert "max_workers: 100" in upgraded
    assert "# a cluster with no client and no work is stopped after this" in upgraded  # comments kept
    assert (tmp_path / "platform.yaml.graticule-v0.bak").read_text() == old
    assert main(["validate", str(path)]) == 0
