"""The hub VM's reaper unit (deploy.gateway.reaping) against a moto server and a real
dask-gateway database where the hub VM's gateway keeps it: the platform's machines the
gateway does not know are terminated, the known ones, the hub and what the layer did not
launch are kept, and a database that cannot be read terminates nothing."""

from __future__ import annotations

import json
import subprocess
import sys

from deploy.gateway import reaping
from deploy.runtime.state import Layout
from deploy.vm import units
from deploy.vm.settings import VmSettings
from tests.support.reaper_fleet import PLATFORM, gateway_database, instance_states


def _settings(tmp_path, region: str) -> VmSettings:
    return VmSettings(PLATFORM, region, "bucket", "/graticule/lab", tmp_path / "state", "/dev/xvdf")


def test_one_pass_terminates_only_what_the_gateway_does_not_know(fleet, tmp_path):
    moto, machines, ids = fleet
    settings = _settings(tmp_path, moto.region)
    Layout(settings.state_dir).gateway.mkdir(parents=True)
    url = gateway_database(Layout(settings.state_dir).gateway / "gateway.sqlite", ids)
    assert url == reaping.gateway_database(settings.state_dir)  # where the rendered gateway config keeps it

    verdict = reaping.reap_once(settings, machines, grace=0)
    assert verdict is not None and verdict.terminated == [ids["orphan"]]
    states = instance_states(moto, ids)
    assert states.pop("orphan") in ("shutting-down", "terminated")
    assert set(states.values()) == {"running"}  # known, hub, runner, another platform's


def test_no_database_terminates_nothing(fleet, tmp_path, capsys):
    moto, machines, ids = fleet
    assert reaping.reap_once(_settings(tmp_path, moto.region), machines, grace=0) is None
    assert "nothing terminated" in capsys.readouterr().out
    assert set(instance_states(moto, ids).values()) == {"running"}


def test_the_unit_runs_a_pass_from_the_vm_settings(fleet, tmp_path):
    moto, _, ids = fleet
    settings = _settings(tmp_path, moto.region)
    Layout(settings.state_dir).gateway.mkdir(parents=True)
    gateway_database(Layout(settings.state_dir).gateway / "gateway.sqlite", ids)
    path = tmp_path / "vm.json"
    path.write_text(json.dumps({"platform": PLATFORM, "region": moto.region, "bucket": "b", "log_group": "g",
                                "state_dir": str(settings.state_dir), "state_device": "/dev/xvdf"}))
    (unit,) = [text for name, text in units.agent_units(path, settings.state_dir).items()
               if name == "graticule-reaper.service"]
    command = next(line for line in unit.splitlines() if line.startswith("ExecStart=")).split("=", 1)[1].split()
    assert command[1:] == ["-m", "deploy.gateway.reaping", str(path)]
    done = subprocess.run([sys.executable, *command[1:], "--once", "--grace", "0"], capture_output=True, text=True,
                          timeout=120, env={**moto.env(), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert f"terminated {ids['orphan']}" in done.stdout
