"""Every numeric bound of the schema (render/schema.py), on both sides: the last allowed
value passes and the first refused one fails, located at its field. CIDR blocks too."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from render.validate import validate_text
from tests.conftest import EXAMPLE_COPY
from tests.support.example_variants import problems


def _set(*path: object, value: object):
    def edit(data: dict) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


# (path, last allowed below, first refused below, last allowed above, first refused above);
# None where the schema has no bound on that side.
BOUNDS = [
    (("cloud", "aws", "zones"), 1, 0, 6, 7),
    (("budgets", "ocean", "monthly_usd"), 0.01, 0, None, None),
    (("budgets", "ocean", "max_cores"), 1, 0, None, None),
    (("budgets", "ocean", "alerts", 0), 1, 0, None, None),
    (("budgets", "ocean", "alerts", 2), None, None, 100, 101),
    (("profiles", "small", "cpu"), 1, 0, 1024, 1025),
    (("profiles", "gpu", "gpu", "count"), 1, 0, None, None),
    (("profiles", "gpu", "price_per_hour_usd"), 0, -0.01, None, None),
    (("dask", "max_workers"), 1, 0, 10_000, 10_001),
    (("integrations", "logs", "retention_days"), 1, 0, 3653, 3654),
]
CASES = [
    pytest.param(path, value, ok, id=f"{'.'.join(map(str, path))}={value}")
    for path, *values in BOUNDS
    for value, ok in zip(values, (True, False, True, False), strict=True)
    if value is not None
]


@pytest.mark.parametrize(("path", "value", "allowed"), CASES)
def test_numeric_bound(path, value, allowed):
    edit = _set(*path, value=value)
    if path == ("cloud", "aws", "zones"):
        # us-east-1 has six zones (the machine catalog), so the schema's bound is what decides
        region, zones = _set("cloud", "aws", "region", value="us-east-1"), edit

        def edit(data):
            region(data)
            zones(data)

    found = problems(edit)
    if allowed:
        assert found == {}
    else:
        field = ".".join(str(p) for p in path[:-1]) + (f"[{path[-1]}]" if isinstance(path[-1], int) else f".{path[-1]}")
        assert list(found) == [field]
        assert "greater than" in found[field] or "less than" in found[field]


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("10.40.0.0/16", None),
        ("10.40.0.0/24", None),
        ("172.16.0.0/16", None),
        ("192.168.10.0/24", None),
        ("10.0.0.0/15", "a VPC needs a prefix between /16 and /24, got /15"),
        ("10.40.0.0/25", "a VPC needs a prefix between /16 and /24, got /25"),
        ("10.40.0.1/16", "'10.40.0.1/16' is not an IPv4 CIDR block (10.40.0.1/16 has host bits set)"),
        ("8.8.0.0/16", "'8.8.0.0/16' is not a private range (use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)"),
        ("10.40.0.0", "a VPC needs a prefix between /16 and /24, got /32"),
        ("ten/16", "'ten/16' is not an IPv4 CIDR block"),
        (1016, "expected a CIDR block such as '10.40.0.0/16', got 1016"),
    ],
)
@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_vpc_cidr(cloud, cidr, message):
    found = problems(_set("cloud", cloud, "vpc_cidr", value=cidr))
    if message is None:
        assert found == {}
    else:
        assert list(found) == [f"cloud.{cloud}.vpc_cidr"]
        assert found[f"cloud.{cloud}.vpc_cidr"].startswith(message)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("profiles", "small", "cpu"), "2"),  # strict: no coercion from strings
        (("profiles", "small", "spot"), "yes"),
        (("budgets", "ocean", "monthly_usd"), "500"),
        (("name",), "a"),  # 2..31 characters
        (("name",), "a" * 32),
        (("environments", "ml", "python"), 3.11),
        (("environments", "ml", "packages"), []),
        (("profiles",), {}),
        (("environments",), {}),
        (("budgets", "ocean", "on_exhausted"), "pause"),
        (("groups", "ocean", "colour"), "blue"),  # unknown keys are refused
    ],
)
def test_refused_values(path, value):
    found = problems(_set(*path, value=value))
    assert any(field.startswith(".".join(map(str, path[:2]))) for field in found), found


@pytest.mark.parametrize(
    ("path", "value"), [(("name",), "ab"), (("name",), "a" * 31), (("profiles", "small", "spot"), True)]
)
def test_allowed_values_at_the_edge(path, value):
    assert problems(_set(*path, value=value)) == {}


@pytest.mark.parametrize(
    "path",
    [
        ("hub", "auth", "github", "org"),
        ("hub", "auth", "github", "client_id"),
        ("profiles", "gpu", "gpu", "type"),
    ],
)
def test_required_strings_take_one_character_but_not_none(path):
    assert problems(_set(*path, value="a")) == {}
    assert list(problems(_set(*path, value=""))) == [".".join(path)]


def test_oidc_client_id_takes_one_character_but_not_none():
    def oidc(client_id: str):
        auth = {"provider": "oidc", "oidc": {"issuer": "https://id.example.org", "client_id": client_id}}
        return _set("hub", "auth", value=auth)

    assert problems(oidc("a")) == {}
    assert list(problems(oidc(""))) == ["hub.auth.oidc.client_id"]


def test_one_profile_one_environment_and_one_package_suffice():
    def edit(data):
        data["profiles"] = {"small": data["profiles"]["small"]}
        data["environments"] = {"default": {"python": "3.11", "packages": ["x"]}}  # a one-letter name is valid
        for group in data["groups"].values():
            group.pop("profiles", None)
            group.pop("environments", None)

    assert problems(edit) == {}


def test_an_invalid_requirement_says_why_on_one_line():
    found = problems(_set("environments", "ml", "packages", 1, value="scikit-learn>>1"))
    assert found == {
        "environments.ml.packages[1]": "'scikit-learn>>1' is not a PEP 508 requirement: "
        "Expected end or semicolon (after name and no valid version specifier)"
    }


def test_api_version_is_spelled_as_in_the_json_schema():
    def edit(data):
        data["api_version"] = data.pop("apiVersion")

    assert problems(edit) == {
        "apiVersion": "required key 'apiVersion' is missing",
        "api_version": "unknown key 'api_version' (did you mean 'apiVersion'?); allowed here: apiVersion, budgets, "
        "ci, cloud, dask, environments, groups, hub, integrations, jobs, name, profiles, target, users",
    }


def test_the_validated_platform_is_immutable_and_finds_users():
    platform = validate_text(EXAMPLE_COPY.read_text())
    with pytest.raises(ValidationError, match="frozen"):
        platform.name = "other"
    assert platform.user("bob").budget == "bob-thesis" and platform.user("nobody") is None
