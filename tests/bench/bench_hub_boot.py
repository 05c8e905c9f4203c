"""Hub VM boot benchmark, aws and gcp side by side: from the instance running to the hub
healthy, in the simulators.

One platform (the repository's platform.yaml, local logins) is rendered and its
wheelhouse and configuration published to the artifacts bucket (moto's S3; on gcp the
Cloud Storage emulator), as `platform apply` does; then its hub instance boots from the
rendered user data (on gcp: its startup script, tests/bench/hub_boot_gcp.py). The phases
come from the timestamps the script and deploy.vm.boot print (`graticule-phase NAME TIME`):

    wheelhouse download   the wheels from the bucket (curl, SigV4 / a metadata-server token)
    wheelhouse install    uv out of its wheel, a venv, `uv pip install --require-hashes`
    configuration         state volume, secrets (generated: first boot), config download
    service start         units started -> proxy and hub answering

Baseline, in the same run: an instance of the same simulator whose user data starts a
bare HTTP server (the sandbox's own cost). The projection adds the published time EC2
takes from RunInstances to a booted instance: about 40 s (Depot, "Making EC2 boot time
8x faster", 2024-05-23, https://depot.dev/blog/faster-ec2-boot-time), of which the
simulator's "running" is the end. Needs root; prints why it cannot run otherwise.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

from deploy.vm.stores import S3Objects
from modules import naming
from render.build import render
from render.validate import validate_text
from tests.support.hub_e2e import platform_yaml
from tests.support.hub_wheelhouse import hub_wheels
from tests.support.moto_server import running_moto
from tests.support.moto_terraform import moto_server_env
from tests.support.simulator import Simulator, simulator_unavailable
from tests.support.simulator.probes import connect, first_image, launch

PUBLISHED_EC2_BOOT_SECONDS = 40.0  # RunInstances -> booted (Depot, 2024; see the docstring)
SERVE = "#!/bin/sh\ncd /tmp && nohup python3 -m http.server 8000 >/var/log/http.log 2>&1 &\n"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def _phases(console: Path, timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = console.read_text(errors="replace") if console.exists() else ""
        found = {name: float(stamp) for name, stamp in re.findall(r"^graticule-phase (\S+) (\S+)$", text, re.M)}
        if "healthy" in found:
            return found
        if "user data exited with" in text and "exited with 0" not in text:
            raise RuntimeError(f"the hub's boot failed:\n{text[-3000:]}")
        time.sleep(0.5)
    raise TimeoutError(f"the hub was not healthy within {timeout:.0f} s:\n{console.read_text()[-3000:]}")


def _cloud(moto, platform) -> dict:
    """What Terraform would have made: role, bucket, secrets (no values), state volume."""
    iam, ec2 = moto.client("iam"), moto.client("ec2")
    iam.create_role(RoleName="bench-hub", AssumeRolePolicyDocument=TRUST)
    profile = iam.create_instance_profile(InstanceProfileName="bench-hub")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="bench-hub", RoleName="bench-hub")
    bucket = naming.artifacts_bucket(platform.name, platform.cloud.aws.account_id)
    moto.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": moto.region})
    sm = moto.client("secretsmanager")
    for key in naming.SECRET_KEYS_GENERATED:
        sm.create_secret(Name=naming.secret_name(platform.name, key))
    subnet = ec2.describe_subnets()["Subnets"][0]
    volume = ec2.create_volume(AvailabilityZone=subnet["AvailabilityZone"], Size=20, VolumeType="gp3", Encrypted=True,
                               TagSpecifications=[{"ResourceType": "volume", "Tags": [
                                   {"Key": "mount-point", "Value": naming.HUB_STATE_DIR}]}])["VolumeId"]
    group = ec2.create_security_group(GroupName="bench-hub", Description="bench", VpcId=subnet["VpcId"])["GroupId"]
    return {"bucket": bucket, "subnet": subnet["SubnetId"], "volume": volume, "group": group,
            "profile": profile["Arn"]}


def _publish(moto, platform, bucket: str, cache: Path) -> float:
    from deploy.vm import publish, wheelhouse

    begin = time.monotonic()
    house = wheelhouse.ensure_wheelhouse(cache)
    files = render(platform, "aws")
    outputs = {"hub_url": "https://hub.oceanlab.org", "artifacts_bucket": bucket, "region": moto.region}
    publish.publish(S3Objects(moto.client("s3"), bucket), house, publish.config_files(files, outputs))
    return time.monotonic() - begin


def _baseline(sim: Simulator, ec2, cloud: dict) -> float:
    instance = launch(ec2, cloud["subnet"], SERVE, [cloud["group"]])
    box = sim.wait_running(instance)
    started = box.extra["started_at"]
    while connect(box, "127.0.0.1", 8000, timeout=1) != "open":
        time.sleep(0.05)
    answered = time.monotonic()
    ec2.terminate_instances(InstanceIds=[instance])
    sim.wait_stopped(instance)
    return answered - started


SPLITS = {  # printed name -> (phase it starts at, phase it ends at)
    "wheelhouse download": ("wheelhouse-download", "wheelhouse-install"),
    "wheelhouse install": ("wheelhouse-install", "boot"),
    "configuration": ("configuration", "services"),
    "service start": ("services", "healthy"),
}


def measured(phases: dict[str, float], running: float, baseline: float, published: float) -> dict:
    """The figures one cloud's run gives: splits, the rest, the total and the baseline."""
    splits = {name: phases[end] - phases[begin] for name, (begin, end) in SPLITS.items()}
    total = phases["healthy"] - running
    return {"published": published, "baseline": baseline, "splits": splits,
            "other (python start-up)": total - sum(splits.values()), "total": total}


def _measure_aws(scratch: Path) -> dict:
    platform = validate_text(platform_yaml("nat"))
    with running_moto(env=moto_server_env(scratch / "moto")) as moto:
        saved = {key: os.environ.get(key) for key in moto.env() if key.startswith("AWS_")}
        os.environ.update({key: value for key, value in moto.env().items() if key.startswith("AWS_")})
        try:
            ec2 = moto.client("ec2")
            cloud = _cloud(moto, platform)
            published = _publish(moto, platform, cloud["bucket"], scratch / "wheelhouse")
            script = render(platform, "aws")["hub-vm/user-data.sh"].decode()
            with Simulator(moto, scratch / "sim", poll_interval=0.1) as sim:
                baseline = _baseline(sim, ec2, cloud)
                instance = launch(ec2, cloud["subnet"], script, [cloud["group"]], image_id=first_image(ec2),
                                  IamInstanceProfile={"Arn": cloud["profile"]})
                box = sim.wait_running(instance)
                running = time.time()
                ec2.attach_volume(VolumeId=cloud["volume"], InstanceId=instance, Device=naming.HUB_STATE_DEVICE)
                phases = _phases(box.console_log, timeout=900)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return measured(phases, running, baseline, published)


def main() -> None:
    reason = simulator_unavailable()
    if reason:
        print(f"  skipped: {reason}")
        return
    from tests.bench.hub_boot_gcp import measure_gcp

    os.environ["GRATICULE_WHEELHOUSE_FIND_LINKS"] = str(hub_wheels())
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as scratch:
        runs = {"aws": _measure_aws(Path(scratch) / "aws"), "gcp": measure_gcp(Path(scratch) / "gcp", _phases)}
    print(f"  {'':<46} {'aws':>8} {'gcp':>8}")

    def row(name: str, values: list[float], digits: int = 1) -> None:
        print(f"  {name:<46} " + " ".join(f"{value:7.{digits}f}s" for value in values))

    row("publish (wheelhouse built, uploaded; config)", [r["published"] for r in runs.values()])
    row("baseline: running -> bare HTTP server", [r["baseline"] for r in runs.values()], 2)
    for name in SPLITS:
        row(f"  {name}", [r["splits"][name] for r in runs.values()])
    row("  other (python start-up)", [r["other (python start-up)"] for r in runs.values()])
    row("instance running -> hub healthy", [r["total"] for r in runs.values()])
    for cloud, run in runs.items():
        print(f"  {cloud}: {run['total']:.1f} s to healthy (target < 60 s: {'met' if run['total'] < 60 else 'missed'}; "
              f"{run['total'] / run['baseline']:.0f}x the bare sandbox)")
    aws = runs["aws"]["total"]
    print(f"  projection on EC2: {PUBLISHED_EC2_BOOT_SECONDS:.0f} s published RunInstances -> booted "
          f"(Depot 2024) + {aws:.1f} s = {PUBLISHED_EC2_BOOT_SECONDS + aws:.0f} s from apply's launch "
          "to a healthy hub (this machine is shared: 2 cores for 5 engineers); no published figure for "
          "GCE's insert -> booted is used, so gcp has no projection")


if __name__ == "__main__":
    main()
