"""Budgets from instances on the AWS gateway backend, against a real moto server.

Usage intervals follow the instances (launch to termination, as EC2 dates them), spot
instances are charged the spot price and on-demand ones the on-demand price, admission
counts instances that are still starting, and `on_exhausted: stop` terminates every
Dask instance tagged with the budget in one metering pass.

Real parts: moto (EC2), boto3, the machines layer, graticule's AWS backend and budget
engine, the rendered gateway spec and worker templates, the ledger on SQLite. The ledger's
clock is moved by hand (an hour of use without waiting an hour); instances do not boot.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.db_base import JobStatus
from sqlalchemy import select

from deploy.cloud.machines import MachineSpec
from deploy.gateway.budgets import STOP_REASON_OPTION
from deploy.ledger import ManualClock
from deploy.ledger.models import UsageInterval
from render import prices
from tests.support import vm_gateway
from tests.support.vm_gateway import ec2_instance, terminated_at


def _rows(made) -> list[UsageInterval]:
    with made.budgets.budgets.ledger.reading() as conn:
        return list(conn.execute(select(UsageInterval).order_by(UsageInterval.id)))


def test_an_interval_runs_from_the_instance_launch_to_its_termination(tmp_path, monkeypatch, aws, example_text):
    # Admitted two minutes before the launch (a slow launch): not charged until the instance exists.
    clock = ManualClock(time.time() - 120)
    made = vm_gateway.backend(tmp_path, monkeypatch, aws, vm_gateway.aws_text(example_text), clock)

    async def scenario():
        cluster, (worker,) = await vm_gateway.cluster_with_workers(made, "carol", "small", 1)
        clock.set(time.time() + 3600)  # the ledger's now: well after what happens next
        await made.liveness()  # a metering pass's look at the machines
        by_process = {row.process: row for row in _rows(made)}
        for job in (cluster, worker):
            row, raw = by_process[job.name], ec2_instance(aws, job.state["machine_id"])
            assert row.machine_id == job.state["machine_id"]
            assert row.started_at == raw["LaunchTime"].timestamp()  # the launch, not the admission
            assert row.price_per_hour_usd == made.spec.profiles["small"].price_per_hour_usd
            assert row.ended_at is None

        aws.client("ec2").terminate_instances(InstanceIds=[worker.state["machine_id"]])  # the machine dies
        alive = await made.liveness()
        assert not alive(worker) and alive(cluster)
        await made.liveness()  # looked at again: nothing changes twice
        row = {r.process: r for r in _rows(made)}[worker.name]
        ended = terminated_at(ec2_instance(aws, worker.state["machine_id"]))
        assert row.ended_at == ended  # EC2's end, not the clock's
        assert row.ended_at < clock() - 3000
        assert len(_rows(made)) == 2  # one interval per instance, however often it is looked at
        return cluster

    try:
        cluster = asyncio.run(scenario())
        asyncio.run(made.budgets.process_stopped(cluster))
        assert all(row.ended_at is not None for row in _rows(made))
    finally:
        made.budgets.close()


def test_spot_instances_pay_the_spot_price_and_on_demand_capacity_the_on_demand_price(
        tmp_path, monkeypatch, aws, example_text):
    made = vm_gateway.backend(tmp_path, monkeypatch, aws, vm_gateway.aws_text(example_text))
    on_demand = prices.instance_hourly("aws", "us-west-2", "m6i.4xlarge")
    spot = round(on_demand * prices.spot_factor("aws"), 4)
    assert spot < on_demand

    async def scenario():
        cluster, (on_spot,) = await vm_gateway.cluster_with_workers(made, "alice", "large", 1)  # spot: true
        # The next worker got no spot capacity and runs on-demand (the machines layer's fallback).
        refused = made.db.create_worker(cluster)
        await vm_gateway.start(made, refused, "worker")
        made.machines.terminate([refused.state["machine_id"]])
        instead = made.machines.launch(MachineSpec(
            name="on-demand-instead", template=made.worker_template("large")["launch_template_name"],
            tags={"platform": made.spec.name, "role": "worker", "cluster": cluster.name, "budget": "ocean"}))
        made.db.update_worker(refused, state={"machine_id": instead.id, "private_ip": instead.private_ip})
        await made.liveness()
        return {row.process: row for row in _rows(made)}, cluster, on_spot, refused, instead

    try:
        rows, cluster, on_spot, refused, instead = asyncio.run(scenario())
        assert ec2_instance(aws, on_spot.state["machine_id"])["InstanceLifecycle"] == "spot"
        assert "InstanceLifecycle" not in ec2_instance(aws, instead.id)
        assert rows[on_spot.name].price_per_hour_usd == spot
        assert rows[refused.name].price_per_hour_usd == on_demand
        assert rows[refused.name].machine_id == instead.id
        assert rows[cluster.name].price_per_hour_usd == spot  # the scheduler got spot too
    finally:
        made.budgets.close()


def test_admission_counts_instances_still_starting_and_the_refusal_names_the_budget(
        tmp_path, monkeypatch, aws, example_text):
    made = vm_gateway.backend(tmp_path, monkeypatch, aws, vm_gateway.aws_text(example_text))

    async def scenario():
        # bob's budget bob-thesis holds at most 8 cores; small is 2 cores a machine.
        cluster, workers = await vm_gateway.cluster_with_workers(made, "bob", "small", 2)
        states = {m.state for m in made.machines.list({"cluster": cluster.name})}
        assert states <= {"pending", "running"} and len(workers) == 2
        assert all(w.status == JobStatus.SUBMITTED for w in workers)  # launched, never connected
        assert await made.budgets.affordable_workers(cluster, 10) == 3  # 6 cores held: room for one more
        with pytest.raises(PublicException, match=r"budget 'bob-thesis' refused .* over max_cores 8"):
            await made.budgets.check_scale(cluster, 4)
        fourth = made.db.create_worker(cluster)
        assert await made.budgets.admit_worker(fourth)
        fifth = made.db.create_worker(cluster)
        assert not await made.budgets.admit_worker(fifth)  # 8 cores held by instances not yet connected

    try:
        asyncio.run(scenario())
    finally:
        made.budgets.close()


def test_on_exhausted_stop_terminates_every_instance_of_the_budget_in_one_metering_pass(
        tmp_path, monkeypatch, aws, example_text):
    text = vm_gateway.aws_text(example_text).replace("monthly_usd: 500", "monthly_usd: 0.05")
    clock = ManualClock(time.time())
    made = vm_gateway.backend(tmp_path, monkeypatch, aws, text, clock)

    def tagged(**tags) -> MachineSpec:
        return MachineSpec(name=f"extra-{tags['role']}", template=made.worker_template("small")["launch_template_name"],
                           tags={"platform": made.spec.name, **tags})

    async def scenario():
        vm_gateway.give_queue(made)
        alices, workers = await vm_gateway.cluster_with_workers(made, "alice", "small", 2)
        bobs, _ = await vm_gateway.cluster_with_workers(made, "bob", "small", 1)
        # An ocean instance the gateway does not know, and a notebook server (the hub's, not the gateway's).
        ghost = made.machines.launch(tagged(role="worker", cluster="ghost", budget="ocean", user="carol"))
        notebook = made.machines.launch(tagged(role="notebook", server="carol", budget="ocean", user="carol"))
        await made.liveness()
        clock.advance(1200)  # twenty minutes of alice's three small machines: $0.096 of $0.05
        loop = asyncio.create_task(made.budgets.budgets.metering_loop(made._budget_live, made._budget_stop, 3600))
        try:
            deadline = time.monotonic() + 60
            ocean = [alices.state["machine_id"], *(w.state["machine_id"] for w in workers), ghost.id]
            while time.monotonic() < deadline and not all(
                    ec2_instance(aws, i)["State"]["Name"] in ("shutting-down", "terminated") for i in ocean):
                await asyncio.sleep(0.1)
        finally:  # the loop sleeps an hour after its first pass: all of this is that one pass
            loop.cancel()
        return alices, bobs, ocean, notebook

    try:
        alices, bobs, ocean, notebook = asyncio.run(scenario())
        states = {i: ec2_instance(aws, i)["State"]["Name"] for i in ocean}
        assert set(states.values()) <= {"shutting-down", "terminated"}, states
        assert alices.target == JobStatus.STOPPED
        assert "budget 'ocean' is exhausted" in alices.options[STOP_REASON_OPTION]
        assert {m.state for m in made.machines.list({"cluster": bobs.name})} <= {"pending", "running"}
        assert ec2_instance(aws, notebook.id)["State"]["Name"] in ("pending", "running")
    finally:
        made.budgets.close()
