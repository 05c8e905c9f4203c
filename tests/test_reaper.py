"""The reaper (deploy/cloud/reaper.py) against a real moto server: orphans terminated; known
machines, the hub, instances the layer did not launch and young machines kept. The
entry point runs as the hub VM would run it, in a process of its own."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from deploy.cloud.aws import AWSMachines
from deploy.cloud.machines import Machine, MachineSpec
from deploy.cloud.reaper import judge, reap
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)

PLATFORM = "oceanlab"
TEMPLATE = "oceanlab-small"


@pytest.fixture
def fleet(moto_server, monkeypatch):  # noqa: F811
    """The platform's instances: two workers the gateway knows, an orphan, the hub and the CI
    runner (Terraform's, no role), and another platform's orphan."""
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    moto_server.reset()
    ec2 = moto_server.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName=TEMPLATE, LaunchTemplateData={"ImageId": image})
    machines = AWSMachines(region=moto_server.region, endpoint_url=moto_server.url)

    def launch(name: str, platform: str = PLATFORM, **tags: str) -> str:
        spec = MachineSpec(name=name, template=TEMPLATE,
                           tags={"platform": platform, "role": "worker", "budget": "ocean", **tags})
        return machines.launch(spec).id

    ids = {
        "known": launch("known", cluster="a"), "known2": launch("known2", role="scheduler", cluster="a"),
        "orphan": launch("orphan", cluster="gone"), "elsewhere": launch("orphan", platform="other"),
    }
    for name, tags in (("hub", {"role": "hub"}), ("runner", {})):
        tagged = [{"Key": k, "Value": v} for k, v in {"platform": PLATFORM, "Name": name, **tags}.items()]
        ids[name] = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[
            {"ResourceType": "instance", "Tags": tagged}])["Instances"][0]["InstanceId"]
    return moto_server, machines, ids


def _states(moto, ids: dict[str, str]) -> dict[str, str]:
    answer = moto.client("ec2").describe_instances(InstanceIds=list(ids.values()))
    by_id = {i["InstanceId"]: i["State"]["Name"] for r in answer["Reservations"] for i in r["Instances"]}
    return {name: by_id[instance_id] for name, instance_id in ids.items()}


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
    states = _states(moto, ids)
    assert states.pop("orphan") in ("shutting-down", "terminated")
    assert set(states.values()) == {"running"}  # the other platform's orphan is not ours to reap


def test_young_machines_are_kept(fleet):
    moto, machines, ids = fleet
    verdict = reap(machines, PLATFORM, list, grace_seconds=2 * 3600, now=_later(1))
    assert verdict.terminated == [] and ids["orphan"] in verdict.young and ids["known"] in verdict.young
    assert set(_states(moto, ids).values()) == {"running"}


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
    assert _states(moto, ids)["orphan"] == "running"

    done = _reaper(moto, "--known", "-", "--grace", "0", stdin=known.read_text())
    assert done.returncode == 0, done.stderr
    assert f"terminated {ids['orphan']}" in done.stdout and "1 terminated, 2 known" in done.stdout
    assert _states(moto, ids)["orphan"] in ("shutting-down", "terminated")


@pytest.mark.parametrize("stdin, says", [("", "not JSON"), ('{"ids": []}', "expected a list"),
                                         ('["i-1", 3]', "expected a list")])
def test_unreadable_known_ids_terminate_nothing(fleet, stdin, says):
    moto, _, ids = fleet
    result = _reaper(moto, "--known", "-", "--grace", "0", stdin=stdin)
    assert result.returncode == 2 and says in result.stderr and "nothing terminated" in result.stderr
    assert "Traceback" not in result.stderr
    assert set(_states(moto, ids).values()) == {"running"}


def test_a_missing_file_and_missing_options_are_bad_input(fleet, tmp_path):
    moto, _, _ = fleet
    missing = _reaper(moto, "--known", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "nope.json" in missing.stderr and "Traceback" not in missing.stderr
    no_zone = subprocess.run([sys.executable, "-m", "deploy.cloud.reaper", "--platform", PLATFORM, "--cloud", "gcp",
                              "--project", "p", "--known", "-"], capture_output=True, text=True, timeout=60)
    assert no_zone.returncode == 2 and "--zone" in no_zone.stderr


def _gateway_database(path, ids: dict[str, str]) -> str:
    """A real dask-gateway database: a running cluster whose scheduler and worker run on the
    known machines, and a stopped cluster whose scheduler's machine is the orphan."""
    from cryptography.fernet import Fernet
    from dask_gateway_server.backends.base import ClusterConfig
    from dask_gateway_server.backends.db_base import DataManager, JobStatus

    url = f"sqlite:///{path}"

    async def record() -> None:  # dask-gateway's records need a running event loop
        db = DataManager(url=url, encrypt_keys=[Fernet.generate_key()])
        running = db.create_cluster("alice", {}, ClusterConfig().to_dict())
        db.update_cluster(running, status=JobStatus.RUNNING, state={"machine_id": ids["known"]})
        worker = db.create_worker(running)
        db.update_worker(worker, status=JobStatus.RUNNING, state={"machine_id": ids["known2"]})
        stopped = db.create_cluster("alice", {}, ClusterConfig().to_dict())
        db.update_cluster(stopped, status=JobStatus.STOPPED, state={"machine_id": ids["orphan"]})
        db.db.dispose()

    asyncio.run(record())
    return url


def test_the_gateway_database_feeds_the_reaper(fleet, tmp_path):
    from deploy.gateway.machines_in_use import machine_ids

    moto, _, ids = fleet
    url = _gateway_database(tmp_path / "gateway.sqlite", ids)
    assert machine_ids(url) == {ids["known"], ids["known2"]}

    producer = subprocess.run([sys.executable, "-m", "deploy.gateway.machines_in_use", "--db", url],
                              capture_output=True, text=True, timeout=120)
    assert producer.returncode == 0, producer.stderr
    done = _reaper(moto, "--known", "-", "--grace", "0", stdin=producer.stdout)
    assert done.returncode == 0, done.stderr
    states = _states(moto, ids)
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
    assert set(_states(moto, ids).values()) == {"running"}
