"""The hub's side of a notebook server's usage on a VM target (`deploy.budgets.servers`).

The spawner runs in the hub, which alone can refuse a spawn with a message the user sees,
so admission happens here, on the ledger the gateway meters (the same database: SQLite on
the hub's state volume or the operator's PostgreSQL; admissions are serialized per budget
in the database, so the hub's and the gateway's never overshoot together). The budgets,
who pays and the prices are the rendered gateway spec's (`gateway/platform.json`), read
again when `platform apply` changes it.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from deploy.budgets import servers
from deploy.budgets.policy import Policy
from deploy.budgets.prices import machine_price
from deploy.ledger import Ledger
from render.gateway_spec import GatewaySpec

_ledgers: dict[str, Ledger] = {}  # one engine per hub process and ledger
_lock = threading.Lock()


def _ledger(state_dir: str) -> Ledger:
    with _lock:
        if state_dir not in _ledgers:
            _ledgers[state_dir] = Ledger.open(state_dir=Path(state_dir))  # GRATICULE_LEDGER_URL wins
        return _ledgers[state_dir]


class ServerMeter:
    """Admit, attach and close one hub's notebook servers' intervals (blocking: call in a thread)."""

    def __init__(self, ledger: Ledger, spec: GatewaySpec) -> None:
        self.ledger = ledger
        self.spec = spec
        self.policy = Policy.from_gateway_spec(spec)

    @classmethod
    def open(cls, policy_file: str, state_dir: str) -> ServerMeter:
        return cls(_ledger(state_dir), GatewaySpec.from_json(json.loads(Path(policy_file).read_text())))

    def budget_of(self, user: str) -> str | None:
        return self.policy.payers.get(user)

    def price(self, profile: str) -> float:
        return machine_price(self.spec, profile, spot=False)  # a server always runs on-demand

    def admit(self, user: str, server: str, profile: str) -> bool:
        """Admit the server's machine (raises BudgetExceeded); False when nobody pays for the
        user (no budget: their server runs unmetered, as on the local target)."""
        if self.budget_of(user) is None:
            return False
        size = self.spec.profiles[profile]
        servers.admit_server(self.ledger, self.policy, user, server, profile, float(size.cpu), int(size.memory),
                             self.price(profile))
        return True

    def attach(self, server: str, profile: str, machine_id: str, launched_at: float | None) -> bool:
        return servers.attach_server(self.ledger, server, machine_id, launched_at, self.price(profile))

    def stopped(self, server: str, reason: str) -> int:
        return servers.server_stopped(self.ledger, server, reason)
