"""Machine simulator benchmark: from run_instances to the user data's HTTP server answering.

Split into: detection (the simulator's describe_instances poll sees the instance running),
sandbox setup (namespace, veth, nft rules, metadata service, overlay root, init), and the
user data run until its server answers. Baseline in the same run: the same boot with the
Debian root already cached (warm) against a first boot that must debootstrap it (cold,
into a throwaway cache). Needs root, like the simulator.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.moto_server import running_moto
from tests.support.simulator import Simulator, missing_prerequisites
from tests.support.simulator.rootfs import CACHE_ENV, ensure_rootfs

AMI = "ami-12c6146b"
WARM_RUNS = 3
USER_DATA = """#!/bin/sh
nohup python3 -m http.server 8080 > /var/log/web.log 2>&1 &
"""
PROBE = """
import socket, time
while True:
    try:
        socket.create_connection(("127.0.0.1", 8080), timeout=2).close(); break
    except OSError:
        time.sleep(0.05)
print(time.time())
"""


def _boot_once(sim: Simulator, ec2) -> dict[str, float]:
    subnet = min(ec2.describe_subnets()["Subnets"], key=lambda s: s["AvailabilityZone"])["SubnetId"]
    launched = time.time()
    instance_id = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, UserData=USER_DATA,
                                    SubnetId=subnet)["Instances"][0]["InstanceId"]
    box = sim.wait_booted(instance_id)
    answered = float(box.run("python3", "-c", PROBE).stdout.strip())
    started = box.user_data_started_at()
    ec2.terminate_instances(InstanceIds=[instance_id])
    sim.wait_gone(instance_id)
    return {"detect": box.detected_at - launched, "setup": started - box.detected_at,
            "user_data": answered - started, "total": answered - launched}


def _show(label: str, figures: dict[str, float]) -> None:
    print(f"{label:<28} total {figures['total']:6.2f} s = detect {figures['detect']:5.2f} + sandbox setup "
          f"{figures['setup']:5.2f} + user data until HTTP answers {figures['user_data']:5.2f}", flush=True)


def main() -> None:
    reason = missing_prerequisites()
    if reason:
        print(f"skipped: {reason}")
        return
    with running_moto() as moto, tempfile.TemporaryDirectory() as work:
        ec2 = moto.client("ec2")
        ensure_rootfs()  # the warm cache, made outside the timing if missing
        with Simulator(moto, Path(work) / "warm") as sim:
            warm = [_boot_once(sim, ec2) for _ in range(WARM_RUNS)]
        median = {key: statistics.median(run[key] for run in warm) for key in warm[0]}
        _show(f"warm root (median of {WARM_RUNS})", median)

        previous = os.environ.get(CACHE_ENV)
        os.environ[CACHE_ENV] = str(Path(work) / "cold-cache")
        try:
            began = time.time()
            with Simulator(moto, Path(work) / "cold") as sim:
                debootstrap = time.time() - began
                cold = _boot_once(sim, ec2)
        finally:
            if previous is None:
                os.environ.pop(CACHE_ENV)
            else:
                os.environ[CACHE_ENV] = previous
        _show("cold root (boot only)", cold)
        print(f"cold root: debootstrap {debootstrap:.1f} s before the first boot; first boot "
              f"{(debootstrap + cold['total']):.1f} s = {(debootstrap + cold['total']) / median['total']:.1f}x "
              f"a warm boot", flush=True)
        print(f"sandbox setup is {median['setup'] / median['total']:.0%} of a warm boot; "
              f"detection (0.5 s poll) {median['detect'] / median['total']:.0%}", flush=True)


if __name__ == "__main__":
    main()
