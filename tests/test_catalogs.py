"""The bundled machine catalogs (render/data/catalog_*.json) and the maintainer command that
refreshes them, `platform catalog refresh`: its AWS path against a real moto server (whose
EC2 answers come from AWS's own DescribeInstanceTypes / offerings data), its GCP path from
gcloud CSV exports."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from render import catalog, prices
from tests.conftest import REPO
from tests.support.moto_server import CREDENTIALS, MotoServer, moto_server  # noqa: F401  (fixture)
from tests.support.procs import free_port

# Families real platforms run (general purpose, compute, memory, GPU): each must be there.
FAMILIES = {
    "aws": "t3 t3a m5 m6i m6a m6g m7i m7a m7g m8i m8g c5 c6i c7i c7g c8i r5 r6i r7i r8i r7g x2idn z1d "
    "g4dn g5 g6 g6e p4d p5",
    "gcp": "e2 n1 n2 n2d n4 t2d t2a c2 c2d c3 c3d c4 c4a c4d m1 m2 m3 g2 a2 a3",
}


@pytest.mark.parametrize("cloud", catalog.CLOUDS)
def test_bundled_catalog_is_dated_sourced_and_covers_the_families(cloud: str) -> None:
    machines = catalog.load(cloud)
    assert machines.cloud == cloud and re.fullmatch(r"\d{4}-\d{2}-\d{2}", machines.date)
    assert machines.source
    families = {catalog.family(cloud, name) for name in machines.names()}
    assert set(FAMILIES[cloud].split()) <= families, set(FAMILIES[cloud].split()) - families
    assert len(machines.regions) >= 25
    with_zones = [region for region in machines.regions if machines.zones[region]]
    # aws: every region; gcp: the zones export predates a few new regions (no zones rule on gcp)
    assert len(with_zones) == len(machines.regions) if cloud == "aws" else len(with_zones) >= 35


@pytest.mark.parametrize("cloud", catalog.CLOUDS)
def test_every_priced_type_is_in_the_catalog_and_offered_where_it_is_priced(cloud: str) -> None:
    machines = catalog.load(cloud)
    for region in prices.regions(cloud):
        for name in prices.known_instances(cloud, region):
            machine = machines.machine(name)
            assert machine is not None and region in machine.regions, (cloud, region, name)


def test_aws_rows_match_ec2s_own_data() -> None:
    """The bundled rows say what DescribeInstanceTypes says (moto ships AWS's answers)."""
    import moto

    source = Path(moto.__file__).parent / "ec2" / "resources" / "instance_types.json.gz"
    described = json.loads(gzip.decompress(source.read_bytes()))
    machines = catalog.load("aws")
    for name in ("m6i.large", "r7i.2xlarge", "r8i.large", "g4dn.2xlarge", "p4de.24xlarge", "m7g.large"):
        info, machine = described[name], machines.machine(name)
        assert machine.vcpus == info["VCpuInfo"]["DefaultVCpus"]
        assert machine.memory_mib == info["MemoryInfo"]["SizeInMiB"]
        assert machine.gpus == sum(gpu["Count"] for gpu in info.get("GpuInfo", {}).get("Gpus", []))
        assert machine.spot == ("spot" in info["SupportedUsageClasses"])
        assert machine.arch == ("arm64" if "arm64" in info["ProcessorInfo"]["SupportedArchitectures"] else "x86_64")
    assert machines.machine("p4de.24xlarge").gpu_model == "nvidia-a100-80gb"
    assert machines.machine("m7g.large").arch == "arm64"


def test_gcp_rows() -> None:
    machines = catalog.load("gcp")
    n1 = machines.machine("n1-standard-8")
    assert (n1.vcpus, n1.memory_mib, n1.gpus, n1.spot) == (8, 30 * 1024, 0, True)
    assert (machines.machine("g2-standard-48").gpus, machines.machine("g2-standard-48").gpu_model) == (4, "nvidia-l4")
    assert machines.machine("a2-highgpu-8g").gpus == 8 and machines.machine("c4a-standard-8").arch == "arm64"
    assert not machines.machine("h4d-standard-192").spot
    t4 = machines.accelerators["nvidia-t4"]
    assert (t4.api_name, t4.families, t4.counts) == ("nvidia-tesla-t4", ("n1",), (1, 2, 4))


@pytest.mark.parametrize("cloud", catalog.CLOUDS)
def test_encode_decode_round_trip(cloud: str) -> None:
    bundled = catalog.load(cloud)
    about = json.loads((REPO / "render" / "data" / f"catalog_{cloud}.json").read_text())["about"]
    again = catalog.decode(catalog.encode(bundled, about))
    assert again.machines() == bundled.machines() and again.accelerators == bundled.accelerators
    assert again.zones == bundled.zones and (again.date, again.source) == (bundled.date, bundled.source)
    # the file is exactly what encode writes: a refresh from the same answers changes nothing
    assert catalog.encode(bundled, about) == (REPO / "render" / "data" / f"catalog_{cloud}.json").read_bytes()


def test_same_gpu() -> None:
    assert catalog.same_gpu("nvidia-h100", "nvidia-h100-80gb")
    assert catalog.same_gpu("nvidia-tesla-a100", "nvidia-a100")
    assert catalog.same_gpu("nvidia-a100", "nvidia-a100-80gb")
    assert not catalog.same_gpu("nvidia-a100-80gb", "nvidia-a100")
    assert not catalog.same_gpu("nvidia-t4", "nvidia-t4g")


def _refresh(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli.main", "catalog", "refresh", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


def _aws_env(server_url: str | None = None) -> dict[str, str]:
    env = {
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    return env


def test_refresh_aws_against_moto(moto_server: MotoServer, tmp_path: Path) -> None:  # noqa: F811
    result = _refresh(
        "--cloud", "aws", "--regions", "us-west-2,eu-west-1", "--endpoint-url", moto_server.url,
        "--out", str(tmp_path), "--date", "2026-01-02", "--source-note", "answered by moto", env=_aws_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = tmp_path / "catalog_aws.json"
    assert f"wrote {written}" in result.stdout
    fresh = catalog.decode(written.read_bytes())
    assert (fresh.date, fresh.regions) == ("2026-01-02", ["eu-west-1", "us-west-2"])
    assert fresh.source.startswith("AWS EC2 API: ") and fresh.source.endswith("; answered by moto")
    assert fresh.zones["us-west-2"] == ("us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d")
    bundled = catalog.load("aws")
    assert set(fresh.names()) <= set(bundled.names()) and len(fresh.names()) > 500
    for name in ("m6i.large", "g4dn.2xlarge", "r7i.large"):
        mine, theirs = fresh.machine(name), bundled.machine(name)
        assert (mine.vcpus, mine.memory_mib, mine.gpus, mine.gpu_model, mine.spot) == (
            theirs.vcpus, theirs.memory_mib, theirs.gpus, theirs.gpu_model, theirs.spot,
        )  # fmt: skip
        assert mine.regions == theirs.regions & {"eu-west-1", "us-west-2"}
    # offered where EC2 says so, per region: the region sets differ between types
    assert {region for name in fresh.names() for region in fresh.machine(name).regions} == {"eu-west-1", "us-west-2"}


def test_refresh_aws_unreachable_endpoint_fails_and_keeps_the_file(tmp_path: Path) -> None:
    existing = tmp_path / "catalog_aws.json"
    existing.write_text("previous")
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = _refresh(
        "--cloud", "aws", "--regions", "us-west-2", "--endpoint-url", closed, "--out", str(tmp_path), env=_aws_env()
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("platform catalog: EC2 API: ") and "Traceback" not in result.stderr
    assert existing.read_text() == "previous"


def test_refresh_gcp_needs_a_project_or_csv(tmp_path: Path) -> None:
    result = _refresh("--cloud", "gcp", "--out", str(tmp_path))
    assert result.returncode == 2 and "needs --project" in result.stderr
    result = _refresh("--cloud", "gcp", "--from-csv", str(tmp_path), "--out", str(tmp_path))
    assert result.returncode == 2 and "missing" in result.stderr and "machinetyperegion.csv" in result.stderr


def test_refresh_gcp_from_csv_exports(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "machinetyperegion.csv").write_text(
        "NAME;CPUS;SHARED_CPU;MEMORY_GB;DEPRECATED;ZONE\n"
        "n1-standard-8;8;False;30.00;;us-central1\n"
        "n1-standard-8;8;False;30.00;;europe-west6\n"
        "g2-standard-24;24;False;96.00;;us-central1\n"
        "a2-ultragpu-2g;24;False;340.00;;us-central1\n"
        "c4a-standard-4;4;False;16.00;;us-central1\n"
        "x4-480-6t-metal;480;False;6144.00;;us-central1\n"
        "n1-old-1;1;False;3.75;DEPRECATED;us-central1\n"
        "ct5lp-hightpu-1t;24;False;48.00;;us-central1\n"
        "n2-standard-2;2;False;8.00;;gone-region1\n"
    )
    (exports / "acceleratortyperegion.csv").write_text(
        "NAME;ZONE\nnvidia-tesla-t4;us-central1\nnvidia-l4;us-central1\nnvidia-tesla-v100;us-central1\n"
    )
    (exports / "regions.csv").write_text("NAME;STATUS;TURNDOWN_DATE\nus-central1;UP;\neurope-west6;UP;\n")
    (exports / "zones.csv").write_text(
        "NAME;REGION;STATUS;NEXT_MAINTENANCE;TURNDOWN_DATE\n"
        "us-central1-a;us-central1;UP;;\nus-central1-b;us-central1;UP;;\neurope-west6-a;europe-west6;UP;;\n"
    )
    result = _refresh("--cloud", "gcp", "--from-csv", str(exports), "--out", str(tmp_path), "--date", "2026-02-03")
    assert result.returncode == 0, result.stderr
    fresh = catalog.decode((tmp_path / "catalog_gcp.json").read_bytes())
    assert fresh.names() == ["a2-ultragpu-2g", "c4a-standard-4", "g2-standard-24", "n1-standard-8", "x4-480-6t-metal"]
    assert fresh.zones == {"europe-west6": ("europe-west6-a",), "us-central1": ("us-central1-a", "us-central1-b")}
    assert fresh.machine("n1-standard-8").regions == {"us-central1", "europe-west6"}
    assert fresh.machine("n1-standard-8").memory_mib == 30 * 1024
    assert (fresh.machine("g2-standard-24").gpus, fresh.machine("g2-standard-24").gpu_model) == (2, "nvidia-l4")
    assert (fresh.machine("a2-ultragpu-2g").gpus, fresh.machine("a2-ultragpu-2g").gpu_model) == (2, "nvidia-a100-80gb")
    assert fresh.machine("c4a-standard-4").arch == "arm64" and not fresh.machine("x4-480-6t-metal").spot
    # attachable GPUs only (L4 is built into g2), with what a VM may take
    assert sorted(fresh.accelerators) == ["nvidia-t4", "nvidia-v100"]
    assert fresh.accelerators["nvidia-v100"].counts == (1, 2, 4, 8)
    assert fresh.accelerators["nvidia-t4"].regions == {"us-central1"}
