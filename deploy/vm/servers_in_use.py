"""The notebook servers' machines the hub knows: what the reaper must keep besides the gateway's.

The VM spawner (deploy.hub.vm_spawner) keeps `{"machine_id": ...}` as each server's
spawner state in JupyterHub's database; a server that runs (or is being stopped) has a
`server_id`. Read straight from JupyterHub's `spawners` table, on SQLite or PostgreSQL,
where the rendered hub config keeps it. A database that cannot be read gives None: the
reaper then keeps every notebook machine ("I could not find out" is never "none known").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import sqlalchemy as sa

from deploy.runtime.database import database_url
from deploy.runtime.existing_database import connected
from deploy.runtime.state import Layout


def hub_database(state_dir: Path) -> str:
    """Where jupyterhub_config.py.tmpl keeps the hub's database."""
    return database_url(os.environ, Layout(state_dir).hub / "jupyterhub.sqlite")


def machine_ids(db_url: str) -> set[str]:
    """Machine ids of the servers JupyterHub holds as running."""
    spawners = sa.table("spawners", sa.column("state"), sa.column("server_id"))
    found = set()
    with connected(db_url, "hub database") as connection:
        for (state,) in connection.execute(sa.select(spawners.c.state).where(spawners.c.server_id.is_not(None))):
            state = json.loads(state) if isinstance(state, str) else (state or {})
            if isinstance(state, dict) and state.get("machine_id"):
                found.add(state["machine_id"])
    return found


def known_or_none(state_dir: Path) -> set[str] | None:
    try:
        return machine_ids(hub_database(state_dir))
    except Exception as error:  # any failure to read means: we do not know which servers run
        print(f"reaper: the hub's database cannot be read ({error}); notebook servers kept", flush=True)
        return None
