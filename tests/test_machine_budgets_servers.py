"""Notebook servers' machines in the gateway's metering pass (aws backend, real moto server,
real SQLite ledger): the hub's spawner admits and attaches a server's interval
(deploy.budgets.servers, as tests/test_vm_spawner_budgets.py shows); the gateway's pass,
which judges every open interval of the ledger,

- keeps a live server's interval open and one still starting (not yet attached), and
  closes one admitted long ago that never got an instance (a hub that died mid-start);
- closes the interval of an instance that went by itself at the end EC2 gives it;
- counts a server towards the money, and, for a budget spent with `on_exhausted: stop`,
  asks the hub's REST API to stop it (DELETE /users/<user>/server, the gateway's service
  token) instead of terminating the instance behind the hub's back.

The hub's REST API is a stand-in here (a small aiohttp server that records what it is
asked); tests/test_aws_budget_e2e.py runs the real hub on the simulated cloud.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from sqlalchemy import select

from deploy.budgets.servers import admit_server, attach_server, server_key
from deploy.cloud.machines import MachineSpec
from deploy.ledger import ManualClock
from deploy.ledger.models import UsageInterval as U
from tests.support import vm_gateway
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.vm_gateway import ec2_instance, terminated_at

SMALL_ON_DEMAND = 0.096  # m6i.large in us-west-2, the table's


def _open(made) -> dict[str, U]:
    with made.budgets.budgets.ledger.reading() as conn:
        return {row.cluster: row for row in conn.execute(select(U).where(U.ended_at.is_(None)))}


def _notebook(made, user: str):
    return made.machines.launch(MachineSpec(
        name=f"nb-{user}", template=made.worker_template("small")["launch_template_name"],
        tags={"platform": made.spec.name, "role": "notebook", "user": user, "server": user, "budget": "ocean"}))


def _serve(made, user: str, clock: ManualClock) -> str:
    """A server admitted and launched as the hub's spawner does it; its instance id."""
    ledger, policy = made.budgets.budgets.ledger, made.budgets.budgets.policy
    admit_server(ledger, policy, user, user, "small", 2, 0, SMALL_ON_DEMAND)
    machine = _notebook(made, user)
    attach_server(ledger, user, machine.id, machine.launched_at.timestamp(), SMALL_ON_DEMAND)
    return machine.id


def test_the_pass_keeps_live_and_starting_servers_open_and_closes_gone_ones_at_their_end(
        tmp_path, monkeypatch, aws, example_text):
    clock = ManualClock(time.time() - 7200)
    made = vm_gateway.backend(tmp_path, monkeypatch, aws, vm_gateway.aws_text(example_text), clock)
    ledger, policy = made.budgets.budgets.ledger, made.budgets.budgets.policy
    try:
        admit_server(ledger, policy, "bob", "bob", "small", 2, 0, SMALL_ON_DEMAND)  # two hours ago, never launched
        clock.set(time.time() - 60)  # admitted a minute before the launch: charged from the launch
        alices = _serve(made, "alice", clock)
        admit_server(ledger, policy, "carol", "carol", "small", 2, 0, SMALL_ON_DEMAND)  # launching now

        seen_at = clock()
        live = asyncio.run(made._budget_live())
        assert live == {(server_key("alice"),) * 2, (server_key("carol"),) * 2}
        made.budgets.budgets.meter(live, seen_at)
        assert set(_open(made)) == {server_key("alice"), server_key("carol")}

        aws.client("ec2").terminate_instances(InstanceIds=[alices])  # gone by itself (the dead-man switch)
        clock.advance(600)
        assert asyncio.run(made.live_outside_clusters()) == {(server_key("carol"),) * 2}
        with ledger.reading() as conn:
            row = conn.execute(select(U).where(U.cluster == server_key("alice"))).one()
        assert row.ended_at == terminated_at(ec2_instance(aws, alices)) and row.end_reason == "instance terminated"
    finally:
        made.budgets.close()


def test_a_spent_stop_budget_asks_the_hub_to_stop_its_servers_and_terminates_none_itself(
        tmp_path, monkeypatch, aws, example_text):
    text = vm_gateway.aws_text(example_text).replace("monthly_usd: 500", "monthly_usd: 0.05")
    clock = ManualClock(time.time())
    made = vm_gateway.backend(tmp_path, monkeypatch, aws, text, clock)
    made.hub_service_token = "gateway-service-token"
    asked: list[tuple[str, str, str]] = []

    async def stop_server(request: web.Request) -> web.Response:
        asked.append((request.method, request.path, request.headers.get("Authorization", "")))
        return web.Response(status=202)

    async def scenario():
        app = web.Application()
        app.router.add_delete("/hub/api/users/{user}/server", stop_server)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        made.hub_api_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hub/api"
        try:
            machine_id = _serve(made, "alice", clock)
            clock.advance(3600)  # an hour of a $0.096/h server: more than the $0.05 budget
            result = made.budgets.budgets.meter(await made._budget_live())
            assert result.exhausted == ["ocean"] and list(result.to_stop) == [server_key("alice")]
            for name, reason in result.to_stop.items():
                await made._budget_stop(name, reason)
            return machine_id
        finally:
            await runner.cleanup()

    try:
        machine_id = asyncio.run(scenario())
        assert asked == [("DELETE", "/hub/api/users/alice/server", "token gateway-service-token")]
        assert ec2_instance(aws, machine_id)["State"]["Name"] in ("pending", "running")  # the hub's spawner stops it
        assert server_key("alice") in _open(made)  # closed by the spawner's stop, not behind the hub's back
    finally:
        made.budgets.close()
