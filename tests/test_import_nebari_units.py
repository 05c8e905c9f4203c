"""The pieces of `platform import nebari`: conda specs -> PEP 440, Kubernetes sizes,
the machine catalog (checked against moto's AWS instance data), node selectors."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement

from deploy.importers.nebari import conda, machines, sizes
from deploy.importers.nebari.names import dns_name, slug
from deploy.importers.nebari.nodegroups import NodeGroup, group_of


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("numpy", "numpy"),
        ("numpy=1.26", "numpy==1.26.*"),  # conda's `=` is fuzzy
        ("numpy=1.26.0", "numpy==1.26.0.*"),
        ("numpy==1.26.0", "numpy==1.26.0"),
        ("numpy 1.26.0", "numpy==1.26.0"),  # match-spec with a space is exact
        ("xarray 2023.10.*", "xarray==2023.10.*"),
        ("xarray=2023.10*", "xarray==2023.10.*"),
        ("pandas>=2.1,<3", "pandas>=2.1,<3"),
        ("pandas >=2.1", "pandas>=2.1"),
        ("conda-forge::zarr=2.16.1=pyhd8ed1ab_0", "zarr==2.16.1.*"),
        ("zarr 2.16.1 pyhd8ed1ab_0", "zarr==2.16.1"),
        ("python-graphviz==0.20.1", "graphviz==0.20.1"),
        ("pytorch=2.1", "torch==2.1.*"),
        ("py-xgboost>=1.7", "xgboost>=1.7"),
        ("scikit-learn *", "scikit-learn"),
        ("numpy >=1.20|<1.10", "numpy"),  # an `or` has no PEP 440 form: unpinned, noted
    ],
)
def test_conda_specs_become_pep_440(spec: str, expected: str) -> None:
    converted = conda.convert(spec)
    assert converted.requirement == expected
    Requirement(converted.requirement)  # and it parses


@pytest.mark.parametrize("spec", ["nodejs=20.8.1", "cudatoolkit=11.8", "r-base", "libgdal", "pip", "graphviz"])
def test_conda_only_packages_are_dropped_with_a_reason(spec: str) -> None:
    converted = conda.convert(spec)
    assert converted.requirement is None
    assert "conda-only" in converted.note


def test_renamed_packages_say_their_pypi_name() -> None:
    assert "PyPI name 'torch'" in conda.convert("pytorch").note
    assert conda.convert("numpy").note == ""


@pytest.mark.parametrize(("pin", "minor"), [("==3.11.6", "3.11"), ("=3.9", "3.9"), (">=3.10", "3.10"), ("", None)])
def test_python_minor_of_a_pin(pin: str, minor: str | None) -> None:
    assert conda.python_minor(pin) == minor


def test_sizes_round_cpus_up_and_read_memory_1024_based() -> None:
    assert sizes.cpus(2) == (2, False)
    assert sizes.cpus(1.5) == (2, True)
    assert sizes.cpus("500m") == (1, True)
    assert sizes.memory("8G") == 8 * 1024**3  # Nebari's 8G is 8 GiB
    assert sizes.memory("8Gi") == 8 * 1024**3
    assert sizes.memory("512M") == 512 * 1024**2
    assert sizes.memory(1024) == 1024
    assert sizes.memory_text(sizes.memory("28G")) == "28GiB"
    assert sizes.memory_text(sizes.memory("1.5G")) == "1536MiB"
    with pytest.raises(ValueError):
        sizes.memory("lots")


def test_names_become_platform_names() -> None:
    assert slug("Small Instance") == "small-instance"
    assert slug("GPU A10G (1x)") == "gpu-a10g-1x"
    assert slug("2 cores") == "x-2-cores"
    assert dns_name("geo_sci") == "geo-sci"
    assert dns_name("QHub_Demo_Project_With_A_Long_Name") == "qhub-demo-project-with-a-long-n"


def test_smallest_fitting_type_of_a_group() -> None:
    group = [machines.AWS[name] for name in ("m5.4xlarge", "m5.xlarge", "m5.2xlarge")]
    assert machines.smallest_fit(group, 4, 16 * 1024**3, 0).name == "m5.xlarge"
    assert machines.smallest_fit(group, 5, 8 * 1024**3, 0).name == "m5.2xlarge"
    assert machines.smallest_fit(group, 8, 33 * 1024**3, 0).name == "m5.4xlarge"
    assert machines.smallest_fit(group, 64, 8 * 1024**3, 0) is None
    assert machines.smallest_fit(group, 1, 1, 1) is None  # no GPUs in the group


def test_aws_catalog_matches_moto_instance_data() -> None:
    """Our small table (until the shared catalog lands) agrees with moto's copy of EC2's data."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES as data  # moto's (gzipped) EC2 data

    for name, machine in machines.AWS.items():
        assert name in data, f"{name} unknown to moto"
        info = data[name]
        assert info["VCpuInfo"]["DefaultVCpus"] == machine.vcpus, name
        assert abs(info["MemoryInfo"]["SizeInMiB"] / 1024 - machine.memory_gib) < 0.01, name
        gpus = sum(gpu["Count"] for gpu in info.get("GpuInfo", {}).get("Gpus", []))
        assert gpus == machine.gpus, name


def test_node_selectors_name_their_group() -> None:
    groups = {name: NodeGroup(name, []) for name in ("general", "user", "worker", "gpu")}
    assert group_of({"dedicated": "gpu"}, groups, {}) == "gpu"
    assert group_of({"eks.amazonaws.com/nodegroup": "worker"}, groups, {}) == "worker"
    assert group_of({"cloud.google.com/gke-nodepool": "gpu"}, groups, {}) == "gpu"
    assert group_of({"kubernetes.io/os": "linux"}, groups, {}) is None
    local = {"general": {"key": "role", "value": "hub"}, "user": {"key": "role", "value": "notebooks"}}
    assert group_of({"role": "notebooks"}, groups, local) == "user"
    assert group_of(None, groups, {}) is None
