"""The laptop side of the budget e2e modules, one step per call; prints JSON. Run like
tests/support/laptop_client.py (a venv with only distributed, dask-gateway and the SDK),
logged in by its `login` step:

    python laptop_budget.py start PROFILE        Cluster(profile=PROFILE): refused (the SDK's
                                                 exception, its type and message) or started
                                                 (then shut down again)
"""

from __future__ import annotations

import json
import sys


def start(profile: str) -> dict:
    import graticule

    try:
        cluster = graticule.Cluster(profile=profile, shutdown_on_close=True)
    except graticule.GraticuleError as refused:
        return {"refused": type(refused).__name__, "message": str(refused)}
    name = cluster.name
    cluster.shutdown()
    return {"started": name}


if __name__ == "__main__":
    step, *arguments = sys.argv[1:]
    print(json.dumps({"start": start}[step](*arguments)))
