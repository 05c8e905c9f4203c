"""Budgets from instances on the GCP gateway backend, against the fake Compute API (validated
by Compute's discovery document: google-cloud-compute's requests, the fake's answers).

What differs from AWS (tests/test_machine_budgets.py) is where the times, the market and
the budget come from: an interval starts at the instance's `creationTimestamp` and a
stopped (TERMINATED) instance's ends at its `lastStopTimestamp`, as Compute dates them; one
stopped (or suspended) and started again between two metering passes is paid for its two
runs, up to its last stop and from its `lastStartTimestamp`, not for the pause;
an instance on Spot (`scheduling.provisioningModel: SPOT`) pays the spot price, one on
standard capacity the on-demand price, both from the bundled GCP price table the render
used; `on_exhausted: stop` deletes every Dask instance *labelled* with the budget (GCE
labels, not AWS tags), the gateway's or not, in one metering pass, and leaves the hub's
notebook instances to the hub.

Real parts: google-cloud-compute and google-cloud-secret-manager (REST) against the fakes,
graticule's GCP backend and machines layer, the rendered gateway spec, worker templates and
stack, dask-gateway's database layer, the ledger on SQLite. The ledger's clock is moved by
hand; instances do not boot.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from dask_gateway_server.backends.db_base import JobStatus
from sqlalchemy import select

from deploy.budgets.servers import admit_server, attach_server, server_key
from deploy.cloud.machines import MachineSpec
from deploy.gateway.budgets import STOP_REASON_OPTION
from deploy.ledger import ManualClock
from deploy.ledger.models import UsageInterval
from render import prices
from tests.support import vm_gateway
from tests.support.gce import clients
from tests.support.gcp_gateway import gcp_backend, gcp_text

REGION = "us-central1"  # the example's cloud.gcp.region


def _rows(made) -> list[UsageInterval]:
    with made.budgets.budgets.ledger.reading() as conn:
        return list(conn.execute(select(UsageInterval).order_by(UsageInterval.id)))


def _raw(fake, name: str) -> dict | None:
    return next((i for i in fake.instances() if i["name"] == name), None)


def _stamp(raw: dict, field: str) -> float:
    return datetime.fromisoformat(raw[field]).timestamp()


def _power(fake, verb: str, raw: dict) -> None:
    """Someone (the console, gcloud) calls Compute's instances.start, suspend or resume."""
    instances = clients.client(fake, "InstancesClient")
    zone = raw["zone"].rsplit("/", 1)[-1]
    clients.wait(fake, getattr(instances, verb)(project=fake.project, zone=zone, instance=raw["name"]))


def _runs(made, machine_id: str) -> list[tuple[float, float | None]]:
    return [(row.started_at, row.ended_at) for row in _rows(made) if row.machine_id == machine_id]


def _on_demand(made, profile: str) -> float:
    return prices.instance_hourly("gcp", REGION, made.worker_template(profile)["machine_type"])


def test_an_interval_runs_from_the_instances_creation_to_its_stop_as_compute_dates_them(
        tmp_path, monkeypatch, example_text):
    clock = ManualClock(time.time() - 120)  # admitted two minutes before the launch: charged from the launch
    with gcp_backend(tmp_path, monkeypatch, gcp_text(example_text), clock) as (made, fake):
        async def scenario():
            cluster, (worker,) = await vm_gateway.cluster_with_workers(made, "carol", "small", 1)
            clock.set(time.time() + 3600)  # the ledger's now: well after what happens next
            await made.liveness()  # a metering pass's look at the machines
            rows = {row.process: row for row in _rows(made)}
            for job in (cluster, worker):
                row, raw = rows[job.name], _raw(fake, job.state["machine_id"])
                assert row.machine_id == job.state["machine_id"]
                assert row.started_at == _stamp(raw, "creationTimestamp")  # the launch, not the admission
                assert row.price_per_hour_usd == _on_demand(made, "small")
                assert row.ended_at is None

            stopped = fake.power_off(worker.state["machine_id"])  # the guest shut down (the dead-man switch)
            alive = await made.liveness()
            assert not alive(worker) and alive(cluster)
            await made.liveness()  # looked at again: nothing changes twice
            row = {r.process: r for r in _rows(made)}[worker.name]
            assert row.ended_at == _stamp(stopped, "lastStopTimestamp")  # Compute's end, not the clock's
            assert (row.ended_at < clock() - 3000) and row.end_reason == "instance stopped"
            assert len(_rows(made)) == 2  # one interval per instance, however often it is looked at
            return cluster

        cluster = asyncio.run(scenario())
        asyncio.run(made.budgets.process_stopped(cluster))
        assert all(row.ended_at is not None for row in _rows(made))


def test_spot_instances_pay_the_spot_price_and_standard_capacity_the_on_demand_price(
        tmp_path, monkeypatch, example_text):
    with gcp_backend(tmp_path, monkeypatch, gcp_text(example_text)) as (made, fake):
        on_demand = _on_demand(made, "large")
        spot = round(on_demand * prices.spot_factor("gcp"), 4)
        assert spot < on_demand

        async def scenario():
            cluster, (on_spot,) = await vm_gateway.cluster_with_workers(made, "alice", "large", 1)  # spot: true
            fake.refuse(provisioning="SPOT")  # no Spot capacity left: the machines layer falls back
            fallback = made.db.create_worker(cluster)
            await vm_gateway.start(made, fallback, "worker")
            await made.liveness()
            return {row.process: row for row in _rows(made)}, cluster, on_spot, fallback

        rows, cluster, on_spot, fallback = asyncio.run(scenario())
        models = {name: _raw(fake, job.state["machine_id"])["scheduling"]["provisioningModel"]
                  for name, job in (("spot", on_spot), ("fallback", fallback))}
        assert models == {"spot": "SPOT", "fallback": "STANDARD"}
        assert rows[on_spot.name].price_per_hour_usd == spot
        assert rows[fallback.name].price_per_hour_usd == on_demand
        assert rows[cluster.name].price_per_hour_usd == spot  # the scheduler got Spot too


def test_on_exhausted_stop_deletes_every_instance_labelled_with_the_budget_in_one_metering_pass(
        tmp_path, monkeypatch, example_text):
    text = gcp_text(example_text).replace("monthly_usd: 500", "monthly_usd: 0.05")
    clock = ManualClock(time.time())
    with gcp_backend(tmp_path, monkeypatch, text, clock) as (made, fake):
        template = made.template_of(made.worker_template("small"))

        def labelled(**labels) -> MachineSpec:
            return MachineSpec(name=f"extra-{labels['role']}", template=template,
                               tags={"platform": made.spec.name, **labels})

        async def scenario():
            vm_gateway.give_queue(made)
            alices, workers = await vm_gateway.cluster_with_workers(made, "alice", "small", 2)
            bobs, _ = await vm_gateway.cluster_with_workers(made, "bob", "small", 1)
            # An ocean instance the gateway does not know, and a notebook server (the hub's, not the gateway's).
            ghost = made.machines.launch(labelled(role="worker", cluster="ghost", budget="ocean", user="carol"))
            notebook = made.machines.launch(labelled(role="notebook", server="carol", budget="ocean", user="carol"))
            await made.liveness()
            clock.advance(1200)  # twenty minutes of alice's three small machines: more than $0.05
            loop = asyncio.create_task(made.budgets.budgets.metering_loop(made._budget_live, made._budget_stop, 3600))
            ocean = [alices.state["machine_id"], *(w.state["machine_id"] for w in workers), ghost.id]
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and any(_raw(fake, name) for name in ocean):
                    await asyncio.sleep(0.1)
            finally:  # the loop sleeps an hour after its first pass: all of this is that one pass
                loop.cancel()
            return alices, bobs, ocean, notebook

        alices, bobs, ocean, notebook = asyncio.run(scenario())
        assert [name for name in ocean if _raw(fake, name)] == []  # deleted, not merely stopped
        assert alices.target == JobStatus.STOPPED
        assert "budget 'ocean' is exhausted" in alices.options[STOP_REASON_OPTION]
        assert {m.state for m in made.machines.list({"cluster": bobs.name})} <= {"pending", "running"}
        assert _raw(fake, notebook.id)["status"] in ("PROVISIONING", "STAGING", "RUNNING")
        deletes = {call["path"].rsplit("/", 1)[-1] for call in fake.calls("compute.instances.delete")}
        assert deletes == set(ocean)


def _alices_notebook(made):
    """alice's notebook instance, admitted and attached to her budget as the hub's spawner does."""
    ledger, policy = made.budgets.budgets.ledger, made.budgets.budgets.policy
    price = _on_demand(made, "small")
    admit_server(ledger, policy, "alice", "alice", "small", 2, 0, price)
    machine = made.machines.launch(MachineSpec(
        name="nb-alice", template=made.template_of(made.worker_template("small")),
        tags={"platform": made.spec.name, "role": "notebook", "user": "alice", "server": "alice",
              "budget": "ocean"}))
    attach_server(ledger, "alice", machine.id, machine.launched_at.timestamp(), price)
    return machine


def test_a_notebook_instance_that_stopped_by_itself_is_paid_until_its_stop(tmp_path, monkeypatch, example_text):
    clock = ManualClock(time.time() - 60)
    with gcp_backend(tmp_path, monkeypatch, gcp_text(example_text), clock) as (made, fake):
        machine = _alices_notebook(made)
        clock.set(time.time() + 600)
        assert asyncio.run(made.live_outside_clusters()) == {(server_key("alice"),) * 2}

        stopped = fake.power_off(machine.id)  # the dead-man switch: the instance stays, TERMINATED
        assert asyncio.run(made.live_outside_clusters()) == set()
        (row,) = _rows(made)
        assert row.started_at == _stamp(stopped, "creationTimestamp")
        assert row.ended_at == _stamp(stopped, "lastStopTimestamp") and row.end_reason == "instance stopped"


def test_an_instance_stopped_and_started_again_is_paid_for_its_two_runs_not_the_pause(
        tmp_path, monkeypatch, example_text):
    clock = ManualClock(time.time() - 120)
    with gcp_backend(tmp_path, monkeypatch, gcp_text(example_text), clock) as (made, fake):
        async def scenario():
            cluster, (worker,) = await vm_gateway.cluster_with_workers(made, "carol", "small", 1)
            clock.set(time.time() + 3600)  # the ledger's now: well after what happens next
            await made.liveness()  # paid from the creation
            stopped = fake.power_off(worker.state["machine_id"])  # the guest shut down...
            _power(fake, "start", stopped)  # ...and someone started it again, between two passes
            alive = await made.liveness()
            assert alive(worker) and alive(cluster)
            await made.liveness()  # looked at again: nothing is split twice
            return cluster, worker

        cluster, worker = asyncio.run(scenario())
        name = worker.state["machine_id"]
        raw = _raw(fake, name)
        assert raw["status"] == "RUNNING"
        assert _runs(made, name) == [(_stamp(raw, "creationTimestamp"), _stamp(raw, "lastStopTimestamp")),
                                     (_stamp(raw, "lastStartTimestamp"), None)]
        first, second = (row for row in _rows(made) if row.machine_id == name)
        assert first.end_reason == "instance stopped"
        assert (second.process, second.cluster, second.budget) == (first.process, first.cluster, first.budget)
        assert first.price_per_hour_usd == second.price_per_hour_usd == _on_demand(made, "small")
        scheduler = cluster.state["machine_id"]
        assert len(_runs(made, scheduler)) == 1  # the scheduler ran on: one interval
        asyncio.run(made.budgets.process_stopped(cluster))
        assert all(row.ended_at is not None for row in _rows(made))


def test_a_notebook_instance_suspended_and_resumed_is_paid_for_its_runs_not_the_suspension(
        tmp_path, monkeypatch, example_text):
    clock = ManualClock(time.time() - 60)
    with gcp_backend(tmp_path, monkeypatch, gcp_text(example_text), clock) as (made, fake):
        machine = _alices_notebook(made)
        clock.set(time.time() + 600)
        live = {(server_key("alice"),) * 2}
        assert asyncio.run(made.live_outside_clusters()) == live

        _power(fake, "suspend", _raw(fake, machine.id))
        _power(fake, "resume", _raw(fake, machine.id))
        assert asyncio.run(made.live_outside_clusters()) == live
        assert asyncio.run(made.live_outside_clusters()) == live  # looked at again: nothing changes
        raw = _raw(fake, machine.id)
        assert raw["status"] == "RUNNING"
        assert _runs(made, machine.id) == [
            (_stamp(raw, "creationTimestamp"), _stamp(raw, "lastSuspendedTimestamp")),
            (_stamp(raw, "lastStartTimestamp"), None)]
        assert {row.price_per_hour_usd for row in _rows(made)} == {_on_demand(made, "small")}
