"""Notebook servers on machines of their own (VM targets) in the usage ledger.

A server's machine is paid like a Dask machine (`deploy.ledger.machines`), in two places:

- the hub's spawner, which alone can refuse a spawn with a message the user sees, admits
  the server before its launch (`admit_server`: the budget's money and `max_cores` count it
  while it starts, in the same serialized transaction as Dask admissions), gives the
  interval its instance once launched (`attach_server`: from EC2's launch time, at the
  on-demand price: a server never runs on spot) and closes it when it stops;
- the gateway's metering pass, which already judges every open interval of the ledger,
  keeps the intervals of live notebook instances open (`live_servers`), closes those whose
  instance went by itself at the instance's end time, and, for a budget spent with
  `on_exhausted: stop`, asks the hub to stop the servers (`server_of` on the keys that
  `queries.running_clusters` lists).

A server's interval is keyed `notebook:<user>[/<name>]` as both cluster and process, so it
is open at most once, like a process.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from deploy.budgets import admission
from deploy.budgets.admission import Request
from deploy.budgets.policy import Policy
from deploy.ledger import Ledger, ProcessKey
from deploy.ledger.machines import Attachment, attach, close_machine
from deploy.ledger.models import ROLE_NOTEBOOK
from deploy.ledger.models import UsageInterval as U

SERVER_PREFIX = "notebook:"
UNATTACHED_GRACE_S = 1800.0  # a server admitted but not launched yet: longer than any spawner's start


def server_key(server: str) -> str:
    """The ledger's cluster and process name of server `user` or `user/name`."""
    return SERVER_PREFIX + server


def server_of(cluster: str) -> tuple[str, str] | None:
    """(user, server name; "" for the default server) of a server's key; None for a cluster's."""
    if not cluster.startswith(SERVER_PREFIX):
        return None
    user, _, name = cluster[len(SERVER_PREFIX):].partition("/")
    return user, name


@dataclass(frozen=True)
class OpenServer:
    key: str
    user: str
    budget: str
    machine_id: str | None
    started_at: float


def admit_server(ledger: Ledger, policy: Policy, user: str, server: str, profile: str, cores: float,
                 memory_bytes: int, price_per_hour_usd: float) -> int:
    """Admit a server's machine before its launch; raises BudgetExceeded naming the budget."""
    key = server_key(server)
    request = Request(user=user, cluster=key, process=key, profile=profile, role=ROLE_NOTEBOOK, cores=cores,
                      memory_bytes=memory_bytes, price_per_hour_usd=price_per_hour_usd)
    return admission.admit(ledger, policy, request)


def attach_server(ledger: Ledger, server: str, machine_id: str, launched_at: float | None,
                  price_per_hour_usd: float) -> bool:
    """The admitted interval follows its instance from now on; False if none was open."""
    key = server_key(server)
    return bool(attach(ledger, [Attachment(key, key, machine_id, launched_at, price_per_hour_usd)]))


def server_stopped(ledger: Ledger, server: str, reason: str, at: float | None = None) -> int:
    key = server_key(server)
    return ledger.close_process(key, key, reason, at)


def open_servers(ledger: Ledger) -> list[OpenServer]:
    query = select(U.cluster, U.user, U.budget, U.machine_id, U.started_at).where(
        U.ended_at.is_(None), U.role == ROLE_NOTEBOOK)
    with ledger.reading() as conn:
        return [OpenServer(row.cluster, row.user, row.budget, row.machine_id, row.started_at)
                for row in conn.execute(query)]


def live_servers(servers: Iterable[OpenServer], alive: set[str], now: float,
                 grace_s: float = UNATTACHED_GRACE_S) -> set[ProcessKey]:
    """Keys of the servers whose instance is alive, or that are still starting (admitted, no
    instance yet, for less than `grace_s`: a hub that died mid-start leaves no charge open)."""
    def live(server: OpenServer) -> bool:
        if server.machine_id:
            return server.machine_id in alive
        return now - server.started_at < grace_s

    return {(server.key, server.key) for server in servers if live(server)}


def close_ended(ledger: Ledger, ended: Iterable[tuple[str, float, str]]) -> int:
    """Close the intervals of instances that went by themselves: (machine id, end time, state)."""
    return sum(close_machine(ledger, machine_id, at, f"instance {state}") for machine_id, at, state in ended)


__all__ = ["SERVER_PREFIX", "OpenServer", "admit_server", "attach_server", "close_ended", "live_servers",
           "open_servers", "server_key", "server_of", "server_stopped"]
