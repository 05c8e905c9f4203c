"""Runs on a Dask worker's machine, with its environment's Python (standard library only):
its source is the `-c` program of the worker's command (`deploy.gateway.vm`).

The machines of one launch batch share one user data, so a machine learns which worker it
is, and where its scheduler listens, from the gateway: it asks with its machine id (on GCP the
instance name, which the boot script exports as GRATICULE_MACHINE_ID; on AWS the instance id,
from IMDSv2) and the cluster's API token (from its secret), until the scheduler has reported
its address, then becomes `dask worker <scheduler> --name <worker> <the other arguments>`.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

ROUTE = "/graticule/v1/clusters/{cluster}/machines/{machine}"


def instance_id() -> str:
    imds = os.environ.get("GRATICULE_IMDS_URL", "http://169.254.169.254")
    put = urllib.request.Request(f"{imds}/latest/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    with urllib.request.urlopen(put, timeout=5) as answer:
        token = answer.read().decode()
    get = urllib.request.Request(f"{imds}/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token})
    with urllib.request.urlopen(get, timeout=5) as answer:
        return answer.read().decode().strip()


def ask(machine: str) -> dict:
    """The gateway's answer: {"worker": name or None, "scheduler_address": "" until known, "stop": bool}."""
    api = os.environ["DASK_GATEWAY_API_URL"].rstrip("/")
    url = api + ROUTE.format(cluster=os.environ["DASK_GATEWAY_CLUSTER_NAME"], machine=machine) + "?wait=20"
    request = urllib.request.Request(url, headers={"Authorization": "token " + os.environ["DASK_GATEWAY_API_TOKEN"]})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def main(arguments: list[str]) -> None:
    machine = ""
    while True:
        try:
            machine = machine or os.environ.get("GRATICULE_MACHINE_ID") or instance_id()
            answer = ask(machine)
        except (OSError, ValueError) as exc:  # the gateway restarting, or not yet knowing this machine
            print(f"graticule: asking the gateway which worker this is: {exc}", file=sys.stderr, flush=True)
            time.sleep(2)
            continue
        if answer.get("stop"):
            print("graticule: the gateway has no worker for this machine any more", flush=True)
            sys.exit(0)
        if answer.get("worker") and answer.get("scheduler_address"):
            break
        time.sleep(1)
    print(f"graticule: worker {answer['worker']} of {answer['scheduler_address']}", flush=True)
    command = [sys.executable, "-m", "distributed.cli.dask_worker", answer["scheduler_address"],
               "--name", answer["worker"], *arguments]
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main(sys.argv[1:])
