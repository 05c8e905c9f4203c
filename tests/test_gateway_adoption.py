"""A restarted gateway adopts what runs, launches nothing twice, pays for nothing twice, and
terminates the instances it does not account for. Against a real moto server.

The "restart" here is a second backend object opening the first one's dask-gateway
database file and ledger, as the gateway process does after a SIGKILL (the process-level
test is tests/test_gateway_adoption_process.py). A batch launch the first gateway made but
never recorded (killed between RunInstances and its database write) is made here by running
the backend's own `do_start_worker` for two workers at once and dropping what they yield.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from cryptography.fernet import Fernet
from dask_gateway_server.backends.db_base import DataManager, JobStatus
from sqlalchemy import select

from deploy.cloud.machines import MachineSpec
from deploy.gateway.adoption import UnrecordedLaunches, orphans
from deploy.ledger.models import UsageInterval
from tests.support import vm_gateway


def _intervals(made) -> list[tuple]:
    with made.budgets.budgets.ledger.reading() as conn:
        query = select(UsageInterval.id, UsageInterval.process, UsageInterval.machine_id, UsageInterval.ended_at)
        return sorted(tuple(row) for row in conn.execute(query))


def test_a_restarted_gateway_adopts_its_clusters_and_terminates_only_what_it_does_not_know(
        tmp_path, monkeypatch, aws, example_text):
    text = vm_gateway.aws_text(example_text)
    database = f"sqlite:///{tmp_path / 'gateway.sqlite'}"
    key = [Fernet.generate_key()]  # the gateway's database key, the same after the restart
    first = vm_gateway.backend(tmp_path, monkeypatch, aws, text)
    template = first.worker_template("small")["launch_template_name"]

    def stray(role: str, cluster: str) -> str:
        tags = {"platform": first.spec.name, "role": role, "cluster": cluster, "budget": "ocean", "user": "carol"}
        return first.machines.launch(MachineSpec(name=f"stray-{role}-{cluster}", template=template, tags=tags)).id

    async def before_the_kill():
        first.db = DataManager(url=database, encrypt_keys=key)
        cluster, (worker,) = await vm_gateway.cluster_with_workers(first, "carol", "small", 1)
        await first.liveness()  # a metering pass: the intervals know their instances
        # A scale-up by two, killed mid-launch: one RunInstances for both answered, neither recorded.
        in_flight = [first.db.create_worker(cluster) for _ in range(2)]
        for job in in_flight:
            first.budgets.budgets.admit(first.budgets._request(
                "carol", cluster.name, job.name, cluster.options, cluster.config, "worker"))

        async def launch(job) -> str:
            (state,) = [state async for state in first.do_start_worker(job)]
            return state["machine_id"]

        launched = await asyncio.gather(*(launch(job) for job in in_flight))
        return cluster.name, worker.name, [job.name for job in in_flight], set(launched)

    try:
        cluster_name, worker_name, in_flight_names, in_flight_ids = asyncio.run(before_the_kill())
        assert len(in_flight_ids) == 2
        forgotten = stray("worker", "a-cluster-nobody-knows")  # e.g. its record was lost
        neighbour = stray("notebook", "-")  # a notebook server: the hub's, never the gateway's
        before = _intervals(first)
    finally:
        first.budgets.close()
    first.db.db.dispose()

    second = vm_gateway.backend(tmp_path, monkeypatch, aws, text, prepare=False)  # the same ledger file

    async def after_the_restart():
        # What MachineMetering.setup does around dask-gateway's and GraticuleBackend's setup:
        listed = second.machines.list({"platform": second.spec.name})  # before anything is launched
        second._unrecorded = UnrecordedLaunches(listed)
        second.db = DataManager(url=database, encrypt_keys=key)
        vm_gateway.give_queue(second)
        cluster = second.db.get_cluster(cluster_name)
        assert cluster.status == JobStatus.RUNNING
        assert {cluster.workers[name].status for name in in_flight_names} == {JobStatus.CREATED}
        second.budgets.recover(second.db, await second.liveness())
        terminated = await second.adopt(listed)
        for name in in_flight_names:  # dask-gateway starts them again: they adopt the batch's machines
            await second.reconcile_worker(cluster.workers[name])
        await second.liveness()
        return terminated, cluster

    try:
        terminated, cluster = asyncio.run(after_the_restart())
        assert terminated == [forgotten]
        adopted = {cluster.workers[name].state["machine_id"] for name in in_flight_names}
        assert adopted == in_flight_ids  # not launched twice
        assert {cluster.workers[name].status for name in in_flight_names} == {JobStatus.SUBMITTED}
        mine = second.machines.list({"cluster": cluster_name})
        assert len(mine) == 4 and all(m.alive for m in mine)
        assert {m.id for m in second.machines.list({"platform": second.spec.name}) if m.alive} == {
            *(m.id for m in mine), neighbour}
        after = _intervals(second)
        assert [row[:2] for row in after] == [row[:2] for row in before]  # the same intervals, none new
        assert all(ended is None for *_, ended in after)  # and still open: the usage goes on
        assert {machine for _, process, machine, _ in after if process in in_flight_names} == in_flight_ids
        assert {process for _, process, _, _ in after} == {cluster_name, worker_name, *in_flight_names}
    finally:
        second.budgets.close()
        second.db.db.dispose()


def test_orphans_spares_young_launches_of_live_clusters_and_what_is_not_the_gateways(aws, tmp_path, monkeypatch,
                                                                                       example_text):
    made = vm_gateway.backend(tmp_path, monkeypatch, aws, vm_gateway.aws_text(example_text))
    made.budgets.close()
    template = made.worker_template("small")["launch_template_name"]

    def launch(name: str, **tags) -> str:
        spec = MachineSpec(name=name, template=template, tags={"platform": made.spec.name, **tags})
        return made.machines.launch(spec).id

    known = launch("known", role="scheduler", cluster="live")
    in_flight = launch("in-flight", role="worker", cluster="live")
    gone_cluster = launch("gone", role="worker", cluster="stopped-long-ago")
    hub = launch("hub", role="hub")
    notebook = launch("nb", role="notebook", server="alice")
    listed = made.machines.list({"platform": made.spec.name})
    launched = max(m.launched_at for m in listed)

    assert orphans(listed, {"live"}, {known}, grace_seconds=900, now=launched) == [gone_cluster]
    later = launched + timedelta(seconds=901)  # the in-flight launch was never recorded
    assert orphans(listed, {"live"}, {known}, grace_seconds=900, now=later) == sorted([gone_cluster, in_flight])
    assert {hub, notebook}.isdisjoint(orphans(listed, set(), set(), 0, later))


def test_the_hub_vm_reaper_ends_unknown_dask_instances_and_never_a_notebook_server(aws, tmp_path, monkeypatch,
                                                                                   example_text):
    from deploy.gateway import reaping
    from deploy.runtime.state import Layout
    from deploy.vm.settings import VmSettings

    made = vm_gateway.backend(tmp_path, monkeypatch, aws, vm_gateway.aws_text(example_text))
    made.budgets.close()
    settings = VmSettings(made.spec.name, aws.region, "bucket", "/graticule/lab", tmp_path / "state", "/dev/xvdf")
    Layout(settings.state_dir).gateway.mkdir(parents=True)
    DataManager(url=reaping.gateway_database(settings.state_dir), encrypt_keys=[Fernet.generate_key()]).db.dispose()
    template = made.worker_template("small")["launch_template_name"]

    def launch(name: str, **tags) -> str:
        spec = MachineSpec(name=name, template=template, tags={"platform": made.spec.name, "budget": "ocean", **tags})
        return made.machines.launch(spec).id

    worker = launch("lost-worker", role="worker", cluster="lost")
    notebook = launch("alice-server", role="notebook", server="alice", user="alice")
    verdict = reaping.reap_once(settings, made.machines, grace=0)
    assert verdict is not None and verdict.terminated == [worker]
    assert notebook in verdict.not_ours
    assert {m.id for m in made.machines.list({"platform": made.spec.name}) if m.alive} == {notebook}
