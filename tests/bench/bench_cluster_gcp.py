"""Launching a cluster's workers on GCP: from the request to every launch call done, for 2
and 200 workers, against the fake Compute API (in its own process), with AWS's machines
layer against moto measured in the same run, side by side.

"Done" is what the gateway waits for: the insert's operation DONE and the instance read
back (AWS: RunInstances answered). Strategies, each measured on fresh state:
- 1 at a time: one `launch` after the other (the baseline of each cloud);
- asyncio's pool: `launch` from a pool as big as asyncio's default executor on this
  machine (`min(32, cpus + 4)`), what `VMBackend._launch` (asyncio.to_thread) gets alone;
- gateway: from a pool of dask-gateway's `parallelism` (20) + 4 threads, the GCP
  gateway's own (`GCPBackend.do_setup`);
- one batch: `launch_batch` (GCP: one bulkInsert; AWS: one RunInstances with MinCount=MaxCount).
Printed: seconds (median of ROUNDS), API requests per machine, speed-up against the
cloud's own 1-at-a-time; n/a where the emulator failed (moto is not safe for concurrent
RunInstances: it may answer 500 under 24 at once). Emulators are not clouds: the seconds compare the layers' work
and round trips, not Google's or Amazon's provisioning times.

(b) In the simulators, instance running to worker connected with a warm wheel cache, GCP
(tests/bench/machine_boot_gcp.py: startup script, identity token to the broker, wheels from
Cloud Storage) and AWS (bench_cluster_aws's (b): user data, Secrets Manager, S3) in the
same run, phase by phase, side by side. Needs root; says why not otherwise.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from google.auth.credentials import AnonymousCredentials

from deploy.cloud.aws import AWSMachines
from deploy.cloud.gcp import GCPMachines
from deploy.cloud.machines import MachineSpec
from tests.support.gce.serve import fake_compute_process, tally
from tests.support.gce.setup import network, template
from tests.support.moto_server import running_moto

ROUNDS = {2: 5, 200: 2}  # per size: 200 one at a time is half a minute a round
ASYNCIO_THREADS = min(32, (os.cpu_count() or 1) + 4)
GATEWAY_THREADS = 20 + 4
PROJECT = "oceanlab-prod"
TAGS = {"platform": "oceanlab", "role": "worker", "user": "alice", "cluster": "c0ffee", "budget": "ocean"}
SCRIPT = "#!/bin/sh\nexec python3 -m distributed.cli.dask_worker tls://10.20.0.5:8786\n"


class _Remote:
    """The fake in another process, as tests/support/gce's helpers expect a fake."""

    def __init__(self, url: str) -> None:
        self.url, self.project = url, PROJECT

    def client_options(self) -> dict:
        return {"api_endpoint": self.url}


def _strategies(spec: MachineSpec) -> dict[str, Callable[[object, int], int]]:
    def one_by_one(machines, n: int) -> int:
        return len([machines.launch(replace(spec, name=f"{spec.name}-{i}")) for i in range(n)])

    def pooled(threads: int) -> Callable[[object, int], int]:
        def run(machines, n: int) -> int:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                return len(list(pool.map(lambda i: machines.launch(replace(spec, name=f"{spec.name}-{i}")), range(n))))
        return run

    def batch(machines, n: int) -> int:
        return len(machines.launch_batch(replace(spec, count=n)))

    return {"1 at a time": one_by_one, f"asyncio's pool ({ASYNCIO_THREADS})": pooled(ASYNCIO_THREADS),
            f"gateway pool ({GATEWAY_THREADS})": pooled(GATEWAY_THREADS), "one batch": batch}


def _gcp(n: int, name: str) -> tuple[float, float]:
    with fake_compute_process(PROJECT) as url:
        fake = _Remote(url)
        network(fake, {"us-central1": "10.20.0.0/16"})
        path = template(fake, "oceanlab-small", "n2-standard-4")
        before = sum(tally(url).values())
        machines = GCPMachines(PROJECT, ["us-central1-a", "us-central1-b"], client_options=fake.client_options(),
                               credentials=AnonymousCredentials())
        spec = MachineSpec(name=f"oceanlab-c0ffee-w{n}", template=path, tags=TAGS, user_data=SCRIPT)
        started = time.perf_counter()
        launched = _strategies(spec)[name](machines, n)
        elapsed = time.perf_counter() - started
        assert launched == n
        return elapsed, (sum(tally(url).values()) - before) / n


def _aws(moto, n: int, name: str, round_: int) -> tuple[float, float] | None:
    moto.reset()
    ec2 = moto.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = {}
    for index, zone in enumerate(("us-west-2a", "us-west-2b")):
        subnets[zone] = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{index * 16}.0/20",
                                          AvailabilityZone=zone)["Subnet"]["SubnetId"]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName="oceanlab-small",
                               LaunchTemplateData={"ImageId": image, "InstanceType": "m5.large"})
    machines = AWSMachines(region=moto.region, endpoint_url=moto.url, subnets=subnets)
    calls = []
    machines.ec2.meta.events.register("before-call.ec2", lambda **_: calls.append(1))
    spec = MachineSpec(name=f"oceanlab-c0ffee-w{n}-{round_}", template="oceanlab-small", tags=TAGS, user_data=SCRIPT)
    started = time.perf_counter()
    try:
        launched = _strategies(spec)[name](machines, n)
    except Exception as error:  # moto under concurrent launches
        print(f"   (aws {name}, {n}: moto failed: {type(error).__name__})", flush=True)
        return None
    elapsed = time.perf_counter() - started
    assert launched == n
    return elapsed, len(calls) / n


def _cell(runs: list, base: dict, cloud: str) -> str:
    runs = [run for run in runs if run is not None]
    if not runs:
        return f"{'n/a':>8} {'':>6} {'':>7}"
    seconds = statistics.median(s for s, _ in runs)
    base.setdefault(cloud, seconds)
    return f"{seconds:8.2f} {runs[0][1]:6.2f} {base[cloud] / seconds:6.1f}x"


def main() -> None:
    names = list(_strategies(MachineSpec(name="x", template="t")))
    print(f"launching N workers, median of {ROUNDS} rounds; GCP: fake Compute API, AWS: moto (local processes)")
    with running_moto() as moto:
        os.environ.update(moto.env())  # the layer's own boto3 client finds moto's test credentials
        for n, rounds in ROUNDS.items():
            print(f"-- {n} workers")
            columns = f"{'s':>8} {'req/m':>6} {'x base':>7}"
            print(f"   {'strategy':<22} gcp {columns}   aws {columns}")
            base: dict[str, float] = {}
            for name in names:
                gcp = [_gcp(n, name) for _ in range(rounds)]
                aws = [_aws(moto, n, name, r) for r in range(rounds)]
                print(f"   {name:<22}     {_cell(gcp, base, 'gcp')}       {_cell(aws, base, 'aws')}", flush=True)
            print(f"   gcp / aws, 1 at a time: {base['gcp'] / base['aws']:.2f}")
    _boots()


BOOT_STEPS = (("secret (token, broker / Secrets Manager)", "user-data", "environment-install"),
              ("environment: wheels from the bucket", "environment-install", "uv-install"),
              ("environment: uv install", "uv-install", "command"))


def _boots() -> None:
    """(b): both clouds' machine boot in their simulators, in this run."""
    from tests.bench import bench_cluster_aws as aws
    from tests.bench.machine_boot_gcp import machine_boot
    from tests.support.simulator import simulator_unavailable

    if reason := simulator_unavailable():
        print(f"(b) skipped: {reason}")
        return
    with tempfile.TemporaryDirectory(prefix="bench-gcp-sim-") as scratch:
        gcp = machine_boot(Path(scratch), aws._tiny_wheels, aws._phases, aws._wait_for)
    with tempfile.TemporaryDirectory(prefix="bench-aws-sim-") as scratch, running_moto() as moto:
        aws._use(moto)
        print("(b) the AWS side, as bench_cluster_aws prints it:")
        amazon = aws._machine_boot(moto, Path(scratch))
    print("(b) instance running -> worker connected, warm wheel cache (simulators, one boot each)")
    print(f"   {'phase':<42} {'gcp':>8} {'aws':>8}")
    for label, start, end in BOOT_STEPS:
        cells = [f"{found['phases'][end] - found['phases'][start]:7.2f}s"
                 if {start, end} <= found["phases"].keys() else f"{'n/a':>8}" for found in (gcp, amazon)]
        print(f"   {label:<42} {cells[0]:>8} {cells[1]:>8}")
    print(f"   {'running -> connected':<42} {gcp['total']:7.2f}s {amazon['total']:7.2f}s   "
          f"gcp / aws {gcp['total'] / amazon['total']:.2f}; target < 15 s: "
          f"{'meets' if gcp['total'] < 15 else 'MISSES'} (gcp), {'meets' if amazon['total'] < 15 else 'MISSES'} (aws)")


if __name__ == "__main__":
    main()
