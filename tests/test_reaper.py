"""The reaper (deploy/cloud/reaper.py) against a real moto server: orphans terminated; known
machines, the hub, instances the layer did not launch and young machines kept. The
entry point runs as the hub VM would run it, in a process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from deploy.cloud.machines import Machine
from deploy.cloud.reaper import judge, reap
from tests.support.reaper_fleet import PLATFORM, gateway_database, instance_states


def _later(hours: float):
    return lambda: datetime.now(UTC) + timedelta(hours=hours)


def test_the_orphan_is_terminated_the_rest_kept(fleet):
    moto, machines, ids = fleet
    asked = []

    def known() -> list[str]:
        asked.append(True)
        return [ids["known"], ids["known2"]]

    verdict = reap(machines, PLATFORM, known, grace_seconds=600, now=_later(1))
    assert asked == [True]
    assert verdict.terminated == [ids["orphan"]]
    assert sorted(verdict.known) == sorted([ids["known"], ids["known2"]])
    assert sorted(verdict.not_ours) == sorted([ids["hub"], ids["runner"]])
    states = instance_states(moto, ids)
    assert states.pop("orphan") in ("shutting-down", "terminated")
    assert set(states.values()) == {"running"}  # the other platform's orphan is not ours to reap


def test_young_machines_are_kept(fleet):
    moto, machines, ids = fleet
    verdict = reap(machines, PLATFORM, list, grace_seconds=2 * 3600, now=_later(1))
    assert verdict.terminated == [] and ids["orphan"] in verdict.young and ids["known"] in verdict.young
    assert set(instance_states(moto, ids).values()) == {"running"}


def test_judge_dates_each_machine():
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def machine(name: str, age_seconds: float | None, role: str | None = "worker") -> Machine:
        launched = None if age_seconds is None else now - timedelta(seconds=age_seconds)
        return Machine(id=name, state="running", tags={"role": role} if role else {}, launched_at=launched)

    verdict = judge([machine("old", 601), machine("edge", 600), machine("new", 599), machine("undated", None),
                     machine("hub", 10**6, role="hub"), machine("known", 10**6)], {"known"}, now, 600)
    assert verdict.terminated == ["old", "edge"]
    assert verdict.young == ["new", "undated"]
    assert verdict.not_ours == ["hub"] and verdict.known == ["known"]


def _reaper(moto, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "deploy.cloud.reaper", "--platform", PLATFORM, "--region", moto.region,
               "--endpoint-url", moto.url, *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **moto.env(), "PYTHONPATH": os.getcwd()})


def test_the_entry_point_reads_the_known_ids_and_terminates_the_orphan(fleet, tmp_path):
    moto, _, ids = fleet
    known = tmp_path / "known.json"
    known.write_text(json.dumps({"machine_ids": [ids["known"], ids["known2"]]}))

    dry = _reaper(moto, "--known", str(known), "--grace", "0", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would terminate {ids['orphan']}" in dry.stdout
    assert instance_states(moto, ids)["orphan"] == "running"

    done = _reaper(moto, "--known", "-", "--grace", "0", stdin=known.read_text())
    assert done.returncode == 0, done.stderr
    assert f"terminated {ids['orphan']}" in done.stdout and "1 terminated, 2 known" in done.stdout
    assert instance_states(moto, ids)["orphan"] in ("shutting-down", "terminated")


@pytest.mark.parametrize("stdin, says", [("", "not JSON"), ('{"ids": []}', "expected a list"),
                                         ('["i-1", 3]', "expected a list")])
def test_unreadable_known_ids_terminate_nothing(fleet, stdin, says):
    moto, _, ids = fleet
    result = _reaper(moto, "--known", "-", "--grace", "0", stdin=stdin)
    assert result.returncode == 2 and says in result.stderr and "nothing terminated" in result.stderr
    assert "Traceback" not in result.stderr
    assert set(instance_states(moto, ids).values()) == {"running"}


def test_a_missing_file_and_missing_options_are_bad_input(fleet, tmp_path):
    moto, _, _ = fleet
    missing = _reaper(moto, "--known", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "nope.json" in missing.stderr and "Traceback" not in missing.stderr
    no_zone = subprocess.run([sys.executable, "-m", "deploy.cloud.reaper", "--platform", PLATFORM, "--cloud", "gcp",
                              "--project", "p", "--known", "-"], capture_output=True, text=True, timeout=60)
    assert no_zone.returncode == 2 and "--zone" in no_zone.stderr


def test_the_gateway_database_feeds_the_reaper(fleet, tmp_path):
    from deploy.gateway.machines_in_use import machine_ids

    moto, _, ids = fleet
    url = gateway_database(tmp_path / "gateway.sqlite", ids)
    assert machine_ids(url) == {ids["known"], ids["known2"]}

    producer = subprocess.run([sys.executable, "-m", "deploy.gateway.machines_in_use", "--db", url],
                              capture_output=True, text=True, timeout=120)
    assert producer.returncode == 0, producer.stderr
    done = _reaper(moto, "--known", "-", "--grace", "0", stdin=producer.stdout)
    assert done.returncode == 0, done.stderr
    states = instance_states(moto, ids)
    assert states.pop("orphan") in ("shutting-down", "terminated") and set(states.values()) == {"running"}


def test_an_unreadable_gateway_database_gives_the_reaper_nothing_to_act_on(fleet, tmp_path):
    moto, _, ids = fleet
    missing = f"sqlite:///{tmp_path / 'nope.sqlite'}"
    producer = subprocess.run([sys.executable, "-m", "deploy.gateway.machines_in_use", "--db", missing],
                              capture_output=True, text=True, timeout=120)
    assert producer.returncode == 2 and producer.stdout == "" and "nope.sqlite" in producer.stderr
    assert not (tmp_path / "nope.sqlite").exists()
    result = _reaper(moto, "--known", "-", "--grace", "0", stdin=producer.stdout)
    assert result.returncode == 2 and "nothing terminated" in result.stderr
    assert set(instance_states(moto, ids).values()) == {"running"}
