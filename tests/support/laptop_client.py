"""What a laptop user runs (the README's laptop section), one step per call; prints JSON.

Run by tests in a virtual environment holding only `distributed`, `dask-gateway` and
graticule's SDK (never the repository on its path):

    python laptop_client.py login HUB_URL USER         (password on stdin)
    python laptop_client.py start                      a Cluster(profile="small", n_workers=2)
    python laptop_client.py compute NAME               reconnect by name with graticule
    python laptop_client.py upstream NAME ADDRESS PROXY   the same with dask_gateway.Gateway
    python laptop_client.py scale NAME N               scale by name, wait for N workers, compute
    python laptop_client.py stop NAME

LAPTOP_WAIT (seconds, default 300) is how long `start` and `scale` wait for their workers
(machines that boot take longer than local processes).
"""

from __future__ import annotations

import json
import os
import sys

WAIT = float(os.environ.get("LAPTOP_WAIT", "300"))


def login(hub_url: str, user: str) -> dict:
    import graticule
    from graticule import settings

    graticule.login(hub_url, username=user, password=sys.stdin.readline().rstrip("\n"))
    saved = settings.read_saved()
    return {key: saved[key] for key in ("gateway_url", "proxy_address", "hub_url", "user")}


def start() -> dict:
    import graticule

    cluster = graticule.Cluster(profile="small", n_workers=2, shutdown_on_close=False)
    with cluster.get_client(set_as_default=False) as client:
        client.wait_for_workers(2, timeout=WAIT)
        total = client.submit(sum, range(100)).result()
        workers = len(client.scheduler_info()["workers"])
    listed = graticule.clusters()
    cluster.close()  # the client side only: the cluster keeps running (shutdown_on_close=False)
    return {"name": cluster.name, "dashboard_link": cluster.dashboard_link, "sum": total,
            "workers": workers, "listed": listed}


def compute(name: str) -> dict:
    import graticule

    cluster = graticule.Cluster(name=name, shutdown_on_close=False)
    try:
        with cluster.get_client(set_as_default=False) as client:
            return {"name": cluster.name, "sum": client.submit(sum, range(10)).result()}
    finally:
        cluster.close()


def upstream(name: str, address: str, proxy_address: str) -> dict:
    # Upstream's client, as in the README: the two published addresses and the hub token
    # (auth="jupyterhub" reads JUPYTERHUB_API_TOKEN).
    from dask_gateway import Gateway

    gateway = Gateway(address=address, proxy_address=proxy_address, auth="jupyterhub")
    try:
        names = [report.name for report in gateway.list_clusters()]
        cluster = gateway.connect(name, shutdown_on_close=False)
        with cluster.get_client(set_as_default=False) as client:
            total = client.submit(sum, range(1000)).result()
        cluster.close()
        return {"listed": names, "sum": total}
    finally:
        gateway.close()


def scale(name: str, count: str) -> dict:
    import graticule

    cluster = graticule.Cluster(name=name, shutdown_on_close=False)
    try:
        cluster.scale(int(count))
        with cluster.get_client(set_as_default=False) as client:
            client.wait_for_workers(int(count), timeout=WAIT)
            total = client.submit(sum, range(10)).result()
            hosts = sorted(w["host"] for w in client.scheduler_info()["workers"].values())
        return {"name": name, "sum": total, "hosts": hosts}
    finally:
        cluster.close()


def stop(name: str) -> dict:
    import graticule

    cluster = graticule.Cluster(name=name, shutdown_on_close=True)
    cluster.shutdown()
    return {"stopped": name}


if __name__ == "__main__":
    step, *arguments = sys.argv[1:]
    steps = {"login": login, "start": start, "compute": compute, "upstream": upstream, "scale": scale,
             "stop": stop}
    print(json.dumps(steps[step](*arguments)))
