"""The hub VM of a cloud e2e platform (AWS or GCP), driven inside its sandbox: the gateway's
usage ledger through the hub's own Python (spending written and forgotten, a cluster's
intervals), and the gateway's unit SIGKILLed as a crash would.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.support.cloud_e2e import hub_box

if TYPE_CHECKING:
    from tests.support.aws_platform import AwsPlatform
    from tests.support.gcp_platform import GcpPlatform

GATEWAY_UNIT = "graticule-gateway.service"
VENV_PYTHON = "/opt/graticule/venv/bin/python"
SEEDED = "e2e-earlier-spending"  # the cluster name of the written spending

# Run on the hub VM by its own Python, on the gateway's ledger (the state volume).
LEDGER_SCRIPT = f"""
import json, sys
from sqlalchemy import delete, select, update
from deploy.ledger import Ledger, Process, month_of, queries
from deploy.ledger.models import AlertSent, BudgetPeriod, UsageInterval as U
ledger = Ledger.open(state_dir="/var/lib/graticule")
action, args = sys.argv[1], sys.argv[2:]
now = ledger.clock()
if action == "spend-to":  # spending earlier this month, so that `left` USD remain of `limit`
    budget, limit, left = args[0], float(args[1]), float(args[2])
    with ledger.writing() as conn:
        spent = queries.spent(conn, budget, month_of(now), now)
        usd = limit - left - spent
        start = max(month_of(now).starts_at, now - 60)
        process = Process("carol", budget, "{SEEDED}", f"spent-{{now}}", "small", "worker", 0, 0,
                          usd * 3600 / (now - start))
        row = ledger.open_interval(conn, process, start)
        conn.execute(update(U).where(U.id == row).values(ended_at=now, heartbeat_at=now, end_reason="e2e"))
elif action == "forget":  # the written spending, and what it set off, gone again
    budget = args[0]
    with ledger.writing() as conn:
        conn.execute(delete(U).where(U.cluster == "{SEEDED}"))
        conn.execute(delete(AlertSent).where(AlertSent.budget == budget, AlertSent.month == month_of(now).name))
        conn.execute(update(BudgetPeriod).where(BudgetPeriod.budget == budget).values(exhausted_at=None))
elif action == "intervals":
    with ledger.reading() as conn:
        rows = conn.execute(select(U.id, U.process, U.machine_id, U.started_at, U.ended_at, U.price_per_hour_usd)
                            .where(U.cluster == args[0]))
        print(json.dumps([dict(row._mapping) for row in rows]))
"""


def ledger(platform: AwsPlatform | GcpPlatform, *args: str) -> str:
    """LEDGER_SCRIPT's answer to `args`: `spend-to BUDGET LIMIT LEFT`, `forget BUDGET`, `intervals CLUSTER`."""
    done = hub_box(platform).exec([VENV_PYTHON, "-c", LEDGER_SCRIPT, *args], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def intervals(platform: AwsPlatform | GcpPlatform, cluster: str) -> list[dict]:
    """The cluster's usage intervals (id, process, machine_id, started_at, ended_at, price_per_hour_usd)."""
    return json.loads(ledger(platform, "intervals", cluster))


def kill_gateway(platform: AwsPlatform | GcpPlatform) -> None:
    """SIGKILL the gateway, then what it left in its process group (as systemd's control-group
    kill does); the simulator's systemctl does not restart it (the unit's Restart=always)."""
    pid_file = f"/run/sim-units/{GATEWAY_UNIT}.pid"
    killed = hub_box(platform).exec(["sh", "-c", f"pid=$(cat {pid_file}); kill -KILL $pid && sleep 1 && "
                                                 f"kill -KILL -- -$pid 2>/dev/null; echo $pid"])
    assert killed.returncode == 0, killed.stdout + killed.stderr


def start_gateway(platform: AwsPlatform | GcpPlatform) -> None:
    assert hub_box(platform).exec(["systemctl", "start", GATEWAY_UNIT]).returncode == 0
