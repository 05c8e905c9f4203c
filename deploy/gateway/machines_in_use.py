"""The machines the gateway knows: what the reaper (deploy/cloud/reaper.py) must keep.

Every scheduler and worker the VM backend started keeps `{"machine_id": ...}` as its
state in the gateway's database; those of clusters and workers not yet stopped or
failed are in use. Read straight from dask-gateway's tables (the `state` column is plain
JSON; only TLS credentials are encrypted), so no keys are needed:

    python -m deploy.gateway.machines_in_use --db sqlite:////var/lib/graticule/gateway/gateway.sqlite \\
        | python -m deploy.cloud.reaper --platform NAME --region REGION --known -

It prints `{"machine_ids": [...]}`, or nothing and exits 2 when the database cannot be
read, which the reaper then refuses as input: an unreadable database never reads as
"no machine is in use".
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import sqlalchemy as sa
from dask_gateway_server.backends.db_base import JobStatus, clusters, workers

from deploy.runtime.existing_database import connected

IN_USE = (JobStatus.CREATED, JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.CLOSING)


def machine_ids(db_url: str) -> set[str]:
    """Machine ids of the clusters' schedulers and the workers that are not stopped or failed."""
    found = set()
    with connected(db_url, "gateway database") as connection:
        for table in (clusters, workers):
            for status, state in connection.execute(sa.select(table.c.status, table.c.state)):
                if status in IN_USE and (state or {}).get("machine_id"):
                    found.add(state["machine_id"])
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.gateway.machines_in_use",
                                     description="Print the machine ids the gateway's database holds as in use.")
    parser.add_argument("--db", required=True, help="the gateway's database URL (c.DBBackendBase.db_url)")
    args = parser.parse_args(argv)
    try:
        ids = machine_ids(args.db)
    except (OSError, sa.exc.SQLAlchemyError) as error:
        print(f"machines_in_use: cannot read the gateway database: {error}".splitlines()[0], file=sys.stderr)
        return 2
    print(json.dumps({"machine_ids": sorted(ids)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
