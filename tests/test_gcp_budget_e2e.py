"""Budgets on the simulated GCP, end to end (the session's `gcp_platform`: the hub booted from
its startup script by the GCE simulator, the rendered stack made in the fakes; its gateway
launching schedulers and workers, its VM spawner notebook servers, as Compute Engine
instances in the fake Compute API, each booted in a sandbox of its own). From this process
(alice's laptop), through the rendered load balancer only:

- alice's clusters' instances are in the ledger at the price of the bundled GCP price table
  the render used for the profile's machine type: on-demand for `small`, the spot estimate
  for `large` (`spot: true`, and the instance is on Spot: `provisioningModel: SPOT`), from
  the instance's `creationTimestamp`;
- a budget with little money left refuses alice's new cluster, started with the SDK in a
  laptop process (`graticule.BudgetExceeded`, naming the budget);
- the budget spent: `on_exhausted: stop` deletes every instance labelled with it (her
  clusters', and one inserted into the fake with the budget's labels that the gateway does
  not know) in one metering pass;
- her notebook server, on an instance of its own, is in the ledger at the on-demand price;
  with the budget nearly spent carol's spawn is refused with a message naming it, shown by
  JupyterHub; once spent, the gateway's metering pass has the hub stop alice's server (the
  hub's API), its instance is deleted and its interval closed.

The budget's earlier spending is written into the hub VM's ledger (a closed interval: the
month's money would otherwise take a month to spend) and removed again at the end, with the
alerts and the exhaustion it set off; platform.yaml is not changed.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials

from deploy.cloud.gcp import GCPMachines
from deploy.cloud.machines import MachineSpec
from render import prices
from render.validate import validate_text
from tests.support.budget_e2e import gateway_log, spawn_answer, user_gateway
from tests.support.cloud_e2e import eventually, gcp_diagnosis, gcp_instances
from tests.support.gcp_hub import PROJECT
from tests.support.gcp_platform import GcpPlatform
from tests.support.hub_e2e import PASSWORDS, Session
from tests.support.hub_vm import intervals, ledger
from tests.support.laptop import on_laptop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

NAME = "oceanlab"
BUDGET = "ocean"  # alice's and carol's (their group's), `on_exhausted: stop`
LIMIT = "500"  # its monthly_usd
WAIT = 900  # seconds for a machine to boot and answer on a shared machine
PASS = 120  # a metering pass runs every 30 s: one of them, with room for a busy machine
CAROL_PASSWORD = "carol-Secret-1"
UNKNOWN = "ocean-e2e-unknown"  # the cluster label of the instance the gateway never launched
LAPTOP_BUDGET = Path(__file__).parent / "support" / "laptop_budget.py"


def _catalog_price(platform: GcpPlatform, profile: str) -> float:
    """What the bundled price table (render/data/prices.json) says one instance of `profile`
    costs an hour on the market its profile asks for: the table the render priced it from."""
    region = validate_text(platform.text).cloud.gcp.region
    machine_type = json.loads((platform.root / "build" / "workers" / f"{profile}.json").read_text())["machine_type"]
    on_demand = prices.instance_hourly("gcp", region, machine_type)
    assert on_demand, f"{machine_type} in {region} is not in the price table"
    spot = validate_text(platform.text).profiles[profile].spot
    return round(on_demand * prices.spot_factor("gcp"), 4) if spot else on_demand


def _created(instance: dict) -> float:
    return datetime.fromisoformat(instance["creationTimestamp"]).timestamp()


def _priced(platform: GcpPlatform, cluster: str, count: int) -> list[dict]:
    """The cluster's `count` intervals once each knows its instance (a metering pass's look)."""
    def attached() -> list[dict] | None:
        rows = [row for row in intervals(platform, cluster) if row["machine_id"]]
        return rows if len(rows) == count else None

    return eventually(attached, PASS, lambda: f"{cluster}'s intervals never knew their instances\n"
                      + gcp_diagnosis(platform, cluster))


def _machines(platform: GcpPlatform) -> GCPMachines:
    """The machines layer on the fake Compute API, as the test's own client (not the gateway's)."""
    return GCPMachines(PROJECT, zones=[platform.stack.zone], client_options=platform.compute.client_options(),
                       credentials=AnonymousCredentials())


def _stranger(platform: GcpPlatform) -> str:
    """An instance labelled as one of the gateway's workers paid by the budget, of a cluster
    the gateway never had: inserted into the fake from the small instance template."""
    labels = {"platform": NAME, "role": "worker", "cluster": UNKNOWN, "budget": BUDGET, "user": "carol"}
    template = f"projects/{PROJECT}/global/instanceTemplates/{NAME}-small"
    return _machines(platform).launch(MachineSpec(name=f"{NAME}-{UNKNOWN}", template=template, tags=labels)).id


def _of(platform: GcpPlatform, clusters: list[str]) -> list[dict]:
    return [instance for cluster in clusters for instance in gcp_instances(platform, cluster)]


def _deleted(platform: GcpPlatform) -> set[str]:
    """The names of the instances that instances.delete was asked for."""
    return {call["path"].rsplit("/", 1)[-1] for call in platform.compute.calls("compute.instances.delete")}


def test_clusters_are_priced_from_the_catalog_refused_by_name_and_deleted_when_the_budget_is_spent(
        gcp_platform: GcpPlatform, laptop: Path, tmp_path: Path):
    platform = gcp_platform
    alice = user_gateway(platform, "alice")
    config = tmp_path / "laptop-config"
    config.mkdir()
    on_laptop(laptop, config, "login", platform.front, "alice", stdin=PASSWORDS["alice"] + "\n")
    started: list[str] = []
    try:
        small = alice.submit(profile="small", workers=1)
        started.append(small)
        spot = alice.submit(profile="large")  # spot: true; its scheduler alone
        started.append(spot)
        launched = eventually(lambda: (found if len(found := _of(platform, started)) == 3 else None), WAIT,
                              lambda: "alice's three instances were not launched\n" + gcp_diagnosis(platform))
        assert all(i["labels"]["budget"] == BUDGET for i in launched)
        by_name = {i["name"]: i for i in launched}

        # each interval follows its instance, from its creation, at the catalog's price for its market
        for cluster, profile, count, model in ((small, "small", 2, "STANDARD"), (spot, "large", 1, "SPOT")):
            for row in _priced(platform, cluster, count):
                instance = by_name[row["machine_id"]]
                assert instance["labels"]["cluster"] == cluster
                assert instance["scheduling"]["provisioningModel"] == model
                assert row["price_per_hour_usd"] == _catalog_price(platform, profile)
                assert row["started_at"] == _created(instance)

        ledger(platform, "spend-to", BUDGET, LIMIT, "0.02")  # 2 cents left: not 10 minutes of anything
        refused = on_laptop(laptop, config, "start", "small", script=LAPTOP_BUDGET)  # the SDK, on her laptop
        assert refused.get("refused") == "BudgetExceeded", refused
        assert f"budget '{BUDGET}' refused" in refused["message"]
        assert "cannot keep what runs" in refused["message"] or "exhausted" in refused["message"]
        assert len(_of(platform, started)) == 3  # what runs is not stopped before 100 %

        stranger = _stranger(platform)
        assert gcp_instances(platform, cluster=UNKNOWN)
        running = {report.name for report in alice.list_clusters()}  # what the budget stop must stop
        assert running, "alice's clusters stopped before her budget was spent\n" + gateway_log(platform)[-6000:]
        logged = len(gateway_log(platform))
        ledger(platform, "spend-to", BUDGET, LIMIT, "-0.01")  # spent: on_exhausted: stop
        doomed = set(by_name) | {stranger}
        eventually(lambda: not gcp_instances(platform, budget=BUDGET), PASS, lambda: "instances of the budget left: "
                   + f"{[i['name'] for i in gcp_instances(platform, budget=BUDGET)]}\n{gcp_diagnosis(platform)}")
        assert doomed <= _deleted(platform)  # deleted through Compute's API, not merely gone
        since = gateway_log(platform)[logged:]
        for cluster in running:
            assert f"Stopping cluster {cluster}: stopped by graticule: budget '{BUDGET}' is exhausted" in since, \
                since[-6000:]
        assert f"instances of budget {BUDGET}" in since
        for cluster in started:
            eventually(lambda c=cluster: all(row["ended_at"] for row in intervals(platform, c)), PASS,
                       lambda c=cluster: f"the intervals of {c} stayed open")
        started = []
    finally:
        ledger(platform, "forget", BUDGET)
        for cluster in started:  # a failed test leaves no cluster behind
            with contextlib.suppress(Exception):
                alice.stop_cluster(cluster)
        alice.close()
        eventually(lambda: not _of(platform, started), 300, lambda: "alice's instances were left")
        _delete_strangers(platform)


def _delete_strangers(platform: GcpPlatform) -> None:
    left = [i["name"] for i in gcp_instances(platform, cluster=UNKNOWN)]
    if left:
        _machines(platform).terminate(left)


def _notebooks(platform: GcpPlatform, user: str) -> list[dict]:
    return gcp_instances(platform, role="notebook", user=user)


def test_a_notebook_server_is_priced_from_the_catalog_refused_by_name_and_stopped_when_the_budget_is_spent(
        gcp_platform: GcpPlatform):
    platform = gcp_platform
    platform.wait_healthy()
    alice = Session(platform.front, "alice")
    assert alice.login().status_code == 302
    server = None
    try:
        try:
            alice.start_server("small", timeout=WAIT)
        except AssertionError:
            print(gcp_diagnosis(platform))
            raise
        (server,) = _notebooks(platform, "alice")
        assert server["labels"]["budget"] == BUDGET

        # her server's machine is in the ledger, from its creation, at the catalog's on-demand price
        (row,) = eventually(lambda: [r for r in intervals(platform, "notebook:alice") if r["ended_at"] is None],
                            PASS, lambda: "no open interval for alice's server")
        assert row["machine_id"] == server["name"]
        assert row["price_per_hour_usd"] == _catalog_price(platform, "small")
        assert row["started_at"] == _created(server)

        # a budget that cannot pay refuses carol's server, by name, on JupyterHub's pages
        ledger(platform, "spend-to", BUDGET, LIMIT, "0.01")
        carol = Session(platform.front, "carol")
        assert carol.login(CAROL_PASSWORD).status_code == 302
        refused = spawn_answer(carol, {"profile": "small"})
        assert f"budget '{BUDGET}' refused this request" in refused, refused
        assert _notebooks(platform, "carol") == []

        # spent: the gateway has the hub stop alice's server; its instance is deleted
        logged = len(gateway_log(platform))
        ledger(platform, "spend-to", BUDGET, LIMIT, "-0.01")
        eventually(lambda: not alice.api("GET", "/users/alice").json().get("servers"), PASS + 300,
                   lambda: "alice's server was not stopped\n" + gcp_diagnosis(platform))
        platform.sim.wait_stopped(server["name"], timeout=300)
        assert server["name"] not in [i["name"] for i in platform.compute.instances()]  # deleted
        since = gateway_log(platform)[logged:]
        assert f"Stopping notebook server alice: stopped by graticule: budget '{BUDGET}' is exhausted" in since
        assert all(r["ended_at"] for r in intervals(platform, "notebook:alice"))
        server = None
    finally:
        ledger(platform, "forget", BUDGET)
        if server is not None:
            print(platform.diagnose(server["name"]))
            alice.api("DELETE", "/users/alice/server")
            eventually(lambda: not _notebooks(platform, "alice"), 300, lambda: "alice's server was left")
