"""Which of the platform's instances the gateway's database does not account for.

Used when the gateway (re)starts (`deploy.gateway.machine_meter`). Only the gateway's
own roles are judged (schedulers and workers; the hub and notebook servers are not its
to end). An instance is an orphan when
- its `cluster` tag names no cluster the database holds as not yet stopped: no launch
  can be in flight for such a cluster, so it goes at once; or
- its cluster is live but no job of it holds this instance, and it is older than the
  grace period: a younger one may be a launch the previous gateway did not record, which
  the re-run launch finds again by its client token (and then records).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from dask_gateway_server.backends.db_base import JobStatus

from deploy.cloud.machines import TAG_CLUSTER, TAG_ROLE, Machine

DASK_ROLES = ("scheduler", "worker")


def in_use(db) -> tuple[set[str], set[str]]:
    """(names of the clusters not stopped, machine ids of their jobs not stopped) in dask-gateway's DataManager."""
    active: set[str] = set()
    known: set[str] = set()
    for cluster in list(db.name_to_cluster.values()):
        if cluster.status >= JobStatus.STOPPED:
            continue
        active.add(cluster.name)
        for job in (cluster, *cluster.workers.values()):
            machine_id = (job.state or {}).get("machine_id")
            if job.status < JobStatus.STOPPED and machine_id:
                known.add(machine_id)
    return active, known


def orphans(listed: Iterable[Machine], active: set[str], known: set[str], grace_seconds: float,
            now: datetime | None = None) -> list[str]:
    now = now or datetime.now(UTC)
    doomed = []
    for machine in listed:
        if not machine.alive or machine.tags.get(TAG_ROLE) not in DASK_ROLES or machine.id in known:
            continue
        forgotten = machine.tags.get(TAG_CLUSTER) not in active
        old = machine.launched_at is not None and (now - machine.launched_at).total_seconds() >= grace_seconds
        if forgotten or old:
            doomed.append(machine.id)
    return sorted(doomed)


class UnrecordedLaunches:
    """Worker machines the previous gateway launched but never recorded (killed between a
    launch and its database write). Listed before this gateway launches anything, they are
    handed to the workers it starts again, one each, instead of launching new ones: a batch
    of workers shares one launch request whose client token a re-run would not repeat (its
    first caller, or its size, may differ), so the token alone cannot find them again."""

    def __init__(self, listed: Iterable[Machine]) -> None:
        self._listed = list(listed)
        self._spare: dict[str, list[Machine]] | None = None

    def _spares(self, db) -> dict[str, list[Machine]]:
        if self._spare is None:  # first asked once the database is loaded
            active, known = in_use(db)
            self._spare = {}
            for machine in self._listed:
                cluster = machine.tags.get(TAG_CLUSTER) or ""
                if machine.alive and machine.tags.get(TAG_ROLE) == "worker" and machine.id not in known \
                        and cluster in active:
                    self._spare.setdefault(cluster, []).append(machine)
        return self._spare

    def of_cluster(self, cluster_name: str) -> list[Machine]:
        """The cluster's listed machines, claimed or not: they hold room in its secret's shards."""
        return [m for m in self._listed if m.alive and m.tags.get(TAG_CLUSTER) == cluster_name]

    def claim(self, db, cluster_name: str) -> Machine | None:
        spare = self._spares(db).get(cluster_name)
        return spare.pop(0) if spare else None

    def held(self, db) -> set[str]:
        """Ids still waiting for a worker to claim them (not orphans; the reaper unit ends
        any left unclaimed once they are older than its grace period)."""
        return {machine.id for spare in self._spares(db).values() for machine in spare}
