"""The laptop side of tests/test_aws_spot_e2e.py, one step per call; prints JSON. Run like
tests/support/laptop_client.py (a venv with only distributed, dask-gateway and the SDK):

    python laptop_spot.py start PROFILE N        a cluster of N workers; their addresses
    python laptop_spot.py persist NAME           scattered pieces and a persisted bag, published
                                                 (kept by the scheduler between steps); keys per worker
    python laptop_spot.py check NAME GONE N      N workers, none at GONE; every key still held, the
                                                 values right, each result computed once; computes on each

Scattered data has no task to recompute it: a key lost with its worker stays lost. So the
pieces surviving a reclaimed worker show its data moved before it went.
"""

from __future__ import annotations

import json
import operator
import os
import sys

WAIT = float(os.environ.get("LAPTOP_WAIT", "300"))
PIECES = [bytes([i]) * 50_000 for i in range(16)]
PRODUCTS = [i * 3 for i in range(64)]


def _connect(name: str):
    import graticule

    return graticule.Cluster(name=name, shutdown_on_close=False)


def _bag():
    import dask.bag

    return dask.bag.from_sequence(range(64), npartitions=8).map(operator.mul, 3)


def start(profile: str, count: str) -> dict:
    import graticule

    cluster = graticule.Cluster(profile=profile, n_workers=int(count), shutdown_on_close=False)
    with cluster.get_client(set_as_default=False) as client:
        client.wait_for_workers(int(count), timeout=WAIT)
        workers = sorted(client.scheduler_info()["workers"])
    cluster.close()
    return {"name": cluster.name, "workers": workers}


def persist(name: str) -> dict:
    from distributed import futures_of

    cluster = _connect(name)
    try:
        with cluster.get_client(set_as_default=False) as client:  # not the default: every call names it
            pieces = client.scatter(PIECES)  # spread over the workers
            products = client.persist(_bag())
            client.gather([*pieces, *futures_of(products)])  # all in memory (small)
            client.publish_dataset(spot_pieces=pieces, spot_products=products)
            held: dict[str, int] = {}
            for holders in client.who_has([*pieces, *futures_of(products)]).values():
                for address in holders:
                    held[address] = held.get(address, 0) + 1
        return {"held": held}
    finally:
        cluster.close()


def _computed_once(dask_scheduler, keys) -> dict:
    """Runs on the scheduler: how often each key went from processing to memory."""
    keys = [tuple(key) if isinstance(key, list) else key for key in keys]  # tuples arrive as lists
    counts = {str(key): 0 for key in keys}
    for key, start, finish, *_ in dask_scheduler.story(*keys):
        if start == "processing" and finish == "memory" and str(key) in counts:
            counts[str(key)] += 1
    return counts


def check(name: str, gone: str, count: str) -> dict:
    from distributed import futures_of

    cluster = _connect(name)
    try:
        with cluster.get_client(set_as_default=False) as client:
            client.wait_for_workers(int(count), timeout=WAIT)
            workers = sorted(client.scheduler_info()["workers"])
            pieces = client.get_dataset("spot_pieces")
            products = client.get_dataset("spot_products")
            futures = [*pieces, *futures_of(products)]
            holders = {str(key): sorted(found) for key, found in client.who_has(futures).items()}
            intact = client.gather(pieces) == PIECES and client.compute(products, sync=True) == PRODUCTS
            computed = client.run_on_scheduler(_computed_once, keys=[f.key for f in futures_of(products)])
            # the cluster keeps computing, on every worker, the replacement included
            ran = {address: client.submit(sum, range(10), workers=[address], pure=False).result()
                   for address in workers}
            hosts = sorted(info["host"] for info in client.scheduler_info()["workers"].values())
        return {"workers": workers, "gone_still_there": gone in workers, "holders": holders, "intact": intact,
                "computed": computed, "ran": ran, "hosts": hosts}
    finally:
        cluster.close()


if __name__ == "__main__":
    step, *arguments = sys.argv[1:]
    print(json.dumps({"start": start, "persist": persist, "check": check}[step](*arguments)))
