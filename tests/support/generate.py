"""Generate large, valid platform.yaml files for benchmarks and scale tests.

`big_platform_yaml(users, groups, profiles, target)` returns YAML text that validates:
every user is in two groups and has a personal budget (so no group-budget ambiguity),
every group grants a handful of profiles and environments, and on aws/gcp every profile
uses an instance type that the bundled price table knows, in the example's regions, big
enough for the profile (the machine catalog's vCPUs, memory and GPUs).
Deterministic: the same arguments give the same text.
"""

from __future__ import annotations

import io

from ruamel.yaml import YAML

from render import catalog, prices

REGIONS = {"aws": "us-west-2", "gcp": "us-central1"}
ENVIRONMENTS = {
    "default": ["dask[distributed]==2026.8.0", "xarray", "zarr>=3"],
    "ml": ["dask[distributed]==2026.8.0", "scikit-learn", "xgboost"],
    "geo": ["dask[distributed]==2026.8.0", "rioxarray", "geopandas"],
}


def big_platform_yaml(users: int = 2000, groups: int = 200, profiles: int = 100, target: str = "local") -> str:
    if min(users, groups, profiles) < 1:
        raise ValueError("users, groups and profiles must each be at least 1")
    budget_names = [f"budget-{index:03d}" for index in range(max(1, groups // 4))]
    profile_names = [f"p{index:03d}" for index in range(profiles)]
    group_names = [f"g{index:03d}" for index in range(groups)]

    document: dict = {
        "apiVersion": "graticule/v1",
        "name": "bigplatform",
        "target": target,
        "cloud": {
            "aws": {
                "region": REGIONS["aws"],
                "account_id": "123456789012",
                "vpc_cidr": "10.40.0.0/16",
                "zones": 3,
                "egress": "nat",
                "state_bucket": "bigplatform-tfstate",
            },
            "gcp": {
                "project": "bigplatform-prod",
                "region": REGIONS["gcp"],
                "vpc_cidr": "10.50.0.0/16",
                "egress": "nat",
                "state_bucket": "bigplatform-tfstate",
            },
        },
        "hub": {
            "domain": "hub.bigplatform.org",
            "auth": {"provider": "github", "github": {"org": "bigplatform", "client_id": "Iv1.0123456789abcdef"}},
            "instance": {"aws": "t3.large", "gcp": "e2-standard-2"},
            "default_profile": profile_names[0],
            "idle_timeout": "1h",
        },
        "groups": {},
        "users": [],
        "budgets": {
            name: {"monthly_usd": 100 + 10 * index, "max_cores": 64, "alerts": [50, 80, 100], "on_exhausted": "stop"}
            for index, name in enumerate(budget_names)
        },
        "profiles": {},
        "dask": {"default_profile": profile_names[0], "max_workers": 100, "idle_timeout": "20m", "max_lifetime": "24h"},
        "environments": {name: {"python": "3.11", "packages": packages} for name, packages in ENVIRONMENTS.items()},
        "ci": {"provider": "github", "repository": "bigplatform/platform", "runner": "github-hosted"},
        "integrations": {
            "storage": [
                {
                    "name": f"data-{index:02d}",
                    "bucket": f"bigplatform-data-{index:02d}",
                    "access": {
                        group_names[(index * 7 + offset) % groups]: ("read-write" if offset == 0 else "read")
                        for offset in range(min(3, groups))
                    },
                }
                for index in range(min(10, groups))
            ],
            "logs": {"retention_days": 30},
            "alerts": {"email": ["ops@bigplatform.org"]},
        },
    }
    for index, name in enumerate(profile_names):
        cpu = 2 ** (1 + index % 5)
        gpu = index % 10 == 9
        profile: dict = {
            "cpu": cpu,
            "memory": f"{cpu * 4}GiB",
            "instance": {cloud: _fitting(cloud, cpu, cpu * 4, gpu, index) for cloud in ("aws", "gcp")},
        }
        if index % 3 == 1:
            profile["spot"] = True
        if gpu:
            profile["gpu"] = {"count": 1, "type": "nvidia-t4"}
            profile["price_per_hour_usd"] = 0.75
        document["profiles"][name] = profile
    for index, name in enumerate(group_names):
        granted = sorted({profile_names[0], *(profile_names[(index * 3 + k) % profiles] for k in range(5))})
        group: dict = {
            "budget": budget_names[index % len(budget_names)],
            "profiles": granted,
            "environments": list(ENVIRONMENTS)[: 1 + index % len(ENVIRONMENTS)],
        }
        if index == 0:
            group = {"admin": True, **group}
        document["groups"][name] = group
    for index in range(users):
        first, second = index % groups, (index * 7 + 3) % groups
        member_of = [group_names[first]] if first == second else [group_names[first], group_names[second]]
        document["users"].append(
            {
                "name": f"user{index:05d}",
                "email": f"user{index:05d}@bigplatform.org",
                "groups": member_of,
                "budget": budget_names[first % len(budget_names)],
            }
        )
    stream = io.StringIO()
    yaml = YAML()
    yaml.default_flow_style = None  # short lists inline, mappings as blocks: like a hand-written file
    yaml.width = 200
    yaml.dump(document, stream)
    return stream.getvalue()


def _fitting(cloud: str, cpu: int, memory_gib: int, gpu: bool, index: int) -> str:
    """A priced type of `cloud` that gives `cpu` and `memory_gib` (and a T4 when `gpu`: built
    into g4dn on aws, attached to n1 on gcp); rotated by `index` for variety."""
    machines = catalog.load(cloud)
    fits = []
    for name in prices.known_instances(cloud, REGIONS[cloud]):
        machine = machines.machine(name)
        if machine is None or machine.vcpus < cpu or machine.memory_mib < memory_gib * 1024:
            continue
        if gpu and not (machine.gpu_model == "nvidia-t4" or name.startswith("n1-")):
            continue
        if not gpu and (machine.gpus or name.startswith("e2-")):
            continue
        fits.append(name)
    return fits[index % len(fits)]
