"""Machine simulator benchmark: from run_instances to user data's HTTP server answering,
and the same on Compute Engine (instances.insert through the fake Compute API to the
startup script's server answering), printed side by side with the warm AWS figures.

Split into: moto -> simulator (the watcher noticing the instance), sandbox setup
(namespace, veth, nft rules, IMDS, overlay root) and the user-data run (python3 starting
an HTTP server, probed from the VPC's router address). The baseline, in the same run, is
the same launch with a cold root cache: debootstrap of the Debian root included.
Needs root; prints why it cannot run otherwise.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.moto_server import running_moto
from tests.support.simulator import Simulator, simulator_unavailable
from tests.support.simulator.netns import connect_in_ns
from tests.support.simulator.probes import first_image, launch
from tests.support.simulator.rootfs import ensure_rootfs

from .simulator_gce import launches as gce_launches

WARM_ROUNDS = 5
SERVE = "#!/bin/sh\ncd /tmp && nohup python3 -m http.server 8000 >/var/log/http.log 2>&1 &\n"


def _answered(sim: Simulator, box, timeout: float = 120.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connect_in_ns(sim.vpc.name, box.ip, 8000, timeout=1).close()
            return time.monotonic()
        except OSError:
            time.sleep(0.01)
    raise TimeoutError(f"{box.instance_id}: user data's server never answered")


def _launches(moto, workdir: Path, rounds: int) -> tuple[float, list[dict[str, float]]]:
    """(seconds to enter the simulator, i.e. make or find the root; per-launch phases)."""
    ec2 = moto.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]
    group = ec2.create_security_group(GroupName=f"bench{time.monotonic_ns()}", Description="bench",
                                      VpcId=subnet["VpcId"])["GroupId"]
    router = f"{subnet['CidrBlock'].rsplit('.', 2)[0]}.0.1"  # x.y.0.0/20 -> x.y.0.1
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "IpRanges": [{"CidrIp": f"{router}/32"}]}])
    image = first_image(ec2)  # moto lists many images: not part of a launch
    entered = time.monotonic()
    phases = []
    with Simulator(moto, workdir, poll_interval=0.05) as sim:
        root_seconds = time.monotonic() - entered
        for _ in range(rounds):
            begin = time.monotonic()
            instance = launch(ec2, subnet["SubnetId"], SERVE, [group], image_id=image)
            box = sim.wait_running(instance)
            answered = _answered(sim, box)
            phases.append({"notice": box.extra["detected_at"] - begin, "setup": box.extra["setup_seconds"],
                           "user_data": answered - box.extra["started_at"], "total": answered - begin})
            ec2.terminate_instances(InstanceIds=[instance])
            sim.wait_stopped(instance)
    return root_seconds, phases


def _line(label: str, phases: list[dict[str, float]]) -> dict[str, float]:
    median = {key: statistics.median(p[key] for p in phases) for key in phases[0]}
    print(f"  {label:<28} notice {median['notice']:.3f} s  setup {median['setup']:.3f} s  "
          f"user data {median['user_data']:.3f} s  total {median['total']:.3f} s  (median of {len(phases)})")
    return median


def main() -> None:
    reason = simulator_unavailable()
    if reason:
        print(f"  skipped: {reason}")
        return
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as scratch, running_moto() as moto:
        ensure_rootfs()  # the warm figures assume the shared cache exists (made here if not, untimed)
        # Warm first: the cold run's figures then include no first-use cost of moto itself.
        warm_root, warm = _launches(moto, Path(scratch) / "warm", WARM_ROUNDS)
        cold_cache = Path(scratch) / "rootfs"
        previous = os.environ.get("GRATICULE_SIM_ROOTFS")
        os.environ["GRATICULE_SIM_ROOTFS"] = str(cold_cache)
        try:
            cold_root, cold = _launches(moto, Path(scratch) / "cold", 1)
        finally:
            if previous is None:
                os.environ.pop("GRATICULE_SIM_ROOTFS")
            else:
                os.environ["GRATICULE_SIM_ROOTFS"] = previous
            shutil.rmtree(cold_cache, ignore_errors=True)
        print(f"  root filesystem: cold (debootstrap) {cold_root:.1f} s, warm (cached) {warm_root:.3f} s")
        _line("cold cache, first launch", cold)
        median = _line("warm cache", warm)
        cold_total = cold_root + cold[0]["total"]
        print(f"  run_instances -> HTTP answering: cold {cold_total:.1f} s vs warm {median['total']:.3f} s "
              f"(warm is {cold_total / median['total']:.0f}x faster)")
        gce = _line("gce, warm cache", gce_launches(Path(scratch) / "gce", WARM_ROUNDS, SERVE))
        print(f"  side by side (warm, median): aws run_instances {median['total']:.3f} s, gce instances.insert "
              f"{gce['total']:.3f} s to HTTP answering (gce/aws {gce['total'] / median['total']:.2f}x)")


if __name__ == "__main__":
    main()
