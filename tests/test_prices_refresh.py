"""`platform prices refresh --cloud aws`: the aws instance prices of render/data/prices.json
from the AWS Price List API, through the real boto3 `pricing` client and the real CLI.

The Pricing API is served by a fake on 127.0.0.1 (tests/support/fake_pricing.py) because
moto implements no Pricing API and nothing else real can serve it offline; the fake checks
each request against botocore's service model and answers in the documented product shape.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from render import cost, prices
from render.validate import validate_text
from tests.support.fake_pricing import product, running_fake_pricing, validate
from tests.support.procs import free_port

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "render" / "data" / "prices.json"
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-west-2",
    "AWS_MAX_ATTEMPTS": "1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}
CHANGED = {("us-west-2", "m6i.large"): "0.1010000000", ("eu-west-1", "t3.nano"): "0.0059000000"}
ADDED = "c7i.large"
ADDED_PRICE = {"us-east-1": "0.0892500000", "us-west-2": "0.0892500000", "eu-west-1": "0.0991200000"}
ADDED_ROUNDED = {"us-east-1": 0.0893, "us-west-2": 0.0893, "eu-west-1": 0.0991}  # the table keeps 4 decimals


def _catalogue(leave_out: tuple[str, str] | None = None) -> list[str]:
    """Every bundled aws price as a product (with CHANGED applied), the added type, and decoys
    the request's filters must keep out (another OS, dedicated tenancy, unused reservations)."""
    table = json.loads(BUNDLED.read_text())
    items = []
    for region, block in table["aws"]["regions"].items():
        for name, price in block["instances"].items():
            if (region, name) != leave_out:
                items.append(product(region, name, CHANGED.get((region, name), f"{price:.10f}")))
            items.append(product(region, name, "9.9990000000", operatingSystem="Windows"))
        items.append(product(region, ADDED, ADDED_PRICE[region]))
        items.append(product(region, "m6i.large", "5.0000000000", tenancy="Dedicated"))
        items.append(product(region, "m6i.large", "0.0000000000", capacitystatus="UnusedCapacityReservation"))
    items.append(product("ap-south-1", "m6i.large", "0.0500000000"))  # a region the table does not list
    return items


def _refresh(table: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli.main", "prices", "refresh", "--cloud", "aws",
         "--table", str(table), "--endpoint-url", url, *args],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **ENV},
    )  # fmt: skip


@pytest.fixture
def table(tmp_path: Path) -> Path:
    copy = tmp_path / "prices.json"
    copy.write_bytes(BUNDLED.read_bytes())
    return copy


def test_refresh_rewrites_the_requested_prices_as_a_small_diff(table: Path) -> None:
    with running_fake_pricing(_catalogue(), page_size=40) as fake:
        result = _refresh(table, fake.url, "--date", "2026-12-04", "--add-types", ADDED)
    assert result.returncode == 0, result.stderr
    assert fake.rejected == []
    assert f"wrote {table}: 5 aws prices changed or added, dated 2026-12-04" in result.stdout

    before, after = json.loads(BUNDLED.read_text()), json.loads(table.read_text())
    assert after["date"] == "2026-12-04"
    assert after["aws"]["regions"]["us-west-2"]["instances"]["m6i.large"] == 0.101
    assert after["aws"]["regions"]["eu-west-1"]["instances"]["t3.nano"] == 0.0059
    for region in ADDED_PRICE:
        assert after["aws"]["regions"][region]["instances"][ADDED] == ADDED_ROUNDED[region]
    # everything else as it was, in the file's own layout: the diff is the changed lines only
    old_lines, new_lines = BUNDLED.read_text().splitlines(), table.read_text().splitlines()
    assert len(new_lines) == len(old_lines) + 3
    assert [line for line in new_lines if line not in old_lines] == [
        '  "date": "2026-12-04",',
        f'          "{ADDED}": 0.0893,',
        f'          "{ADDED}": 0.0893,',
        '          "m6i.large": 0.101,',
        f'          "{ADDED}": 0.0991,',
        '          "t3.nano": 0.0059,',
    ]
    assert after["gcp"] == before["gcp"] and after["about"] == before["about"]
    assert list(after["aws"]["regions"]) == list(before["aws"]["regions"])
    for region, block in after["aws"]["regions"].items():
        assert list(block) == list(before["aws"]["regions"][region])  # fixed items kept, in order
        assert list(block["instances"]) == sorted(block["instances"])

    # the requests: one paged walk per region with the documented filters, never the decoys
    by_region: dict[str, list[dict]] = {}
    for request in fake.requests:
        terms = {term["Field"]: term["Value"] for term in request["Filters"]}
        assert request["ServiceCode"] == "AmazonEC2" and request["FormatVersion"] == "aws_v1"
        assert {key: terms[key] for key in ("operatingSystem", "tenancy", "preInstalledSw", "capacitystatus")} == {
            "operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used",
        }  # fmt: skip
        by_region.setdefault(terms["regionCode"], []).append(request)
    assert sorted(by_region) == ["eu-west-1", "us-east-1", "us-west-2"]
    assert all(len(pages) == 2 and "NextToken" in pages[1] for pages in by_region.values())  # 58 products, 40 a page


def test_refreshed_table_still_validates_the_repository_files(table: Path, monkeypatch) -> None:
    with running_fake_pricing(_catalogue()) as fake:
        assert _refresh(table, fake.url, "--date", "2026-12-04").returncode == 0
    refreshed = json.loads(table.read_text())
    monkeypatch.setattr(prices, "table", lambda: refreshed)
    for path in (REPO / "platform.yaml", REPO / "tests" / "data" / "platform.example.yaml"):
        text = path.read_text()
        validate_text(text, path.name)
        on_aws = validate_text(text.replace("target: local", "target: aws", 1), path.name)
        assert cost.profile_price(on_aws, "aws", "small").price_per_hour_usd == 0.101  # m6i.large, us-west-2
        assert prices.date() == "2026-12-04"


def test_a_missing_product_is_reported_and_the_file_kept(table: Path) -> None:
    with running_fake_pricing(_catalogue(leave_out=("eu-west-1", "g5.xlarge"))) as fake:
        refused = _refresh(table, fake.url, "--date", "2026-12-04")
        assert table.read_bytes() == BUNDLED.read_bytes()
        allowed = _refresh(table, fake.url, "--date", "2026-12-04", "--allow-missing")
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith(
        "platform prices: the Pricing API has no on-demand Linux price for g5.xlarge in eu-west-1;"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "warning: no price from the Pricing API for g5.xlarge in eu-west-1" in allowed.stderr
    after = json.loads(table.read_text())
    assert after["aws"]["regions"]["eu-west-1"]["instances"]["g5.xlarge"] == json.loads(BUNDLED.read_text())["aws"][
        "regions"]["eu-west-1"]["instances"]["g5.xlarge"]  # fmt: skip


def _without_on_demand(item: str) -> str:
    document = json.loads(item)
    del document["terms"]["OnDemand"]
    return json.dumps(document)


BAD_ITEMS = {
    "not JSON": ("{product", "is not a product document"),
    "no on-demand terms": (_without_on_demand(product("us-east-1", "t3.nano", "0.0052000000")), "KeyError('OnDemand')"),
    "price not a number": (product("us-east-1", "t3.nano", "n/a"), "USD price 'n/a' is not a number"),
    "price zero": (product("us-east-1", "t3.nano", "0.0000000000"), "is not a positive price"),
}


@pytest.mark.parametrize("case", BAD_ITEMS)
def test_a_bad_response_is_a_clear_error_and_leaves_the_file(table: Path, case: str) -> None:
    item, message = BAD_ITEMS[case]
    with running_fake_pricing([item, *_catalogue()]) as fake:
        result = _refresh(table, fake.url)
    assert result.returncode == 1
    assert result.stderr.startswith("platform prices: Pricing API: ") and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert table.read_bytes() == BUNDLED.read_bytes()


def test_conflicting_prices_for_one_type_are_an_error(table: Path) -> None:
    with running_fake_pricing([product("us-east-1", "t3.nano", "0.0060000000"), *_catalogue()]) as fake:
        result = _refresh(table, fake.url)
    assert result.returncode == 1 and "two on-demand prices for t3.nano in us-east-1" in result.stderr
    assert table.read_bytes() == BUNDLED.read_bytes()


def test_an_error_answer_and_a_bad_table_are_reported(table: Path, tmp_path: Path) -> None:
    with running_fake_pricing([]) as fake:
        broken = tmp_path / "broken.json"
        broken.write_text('{"aws": {}}')
        bad_table = _refresh(broken, fake.url)
        bad_date = _refresh(table, fake.url, "--date", "4 Dec")
        bad_type = _refresh(table, fake.url, "--add-types", "m6i.larg")
    assert bad_table.returncode == 2 and "not a price table" in bad_table.stderr
    assert bad_date.returncode == 2 and "--date '4 Dec': expected YYYY-MM-DD" in bad_date.stderr
    assert bad_type.returncode == 2
    assert "--add-types: 'm6i.larg' is not in the bundled aws catalog (did you mean 'm6i.large'?)" in bad_type.stderr
    assert broken.read_text() == '{"aws": {}}' and table.read_bytes() == BUNDLED.read_bytes()
    assert fake.requests == []  # refused before asking the API


def test_the_fake_checks_requests_against_the_service_model() -> None:
    shape = "GetProductsRequest"
    assert validate(shape, {"ServiceCode": "AmazonEC2", "MaxResults": 100}) == []
    assert validate(shape, {"MaxResults": 0}) == ["input.ServiceCode: required", "input.MaxResults: 0 out of range"]
    assert validate(shape, {"ServiceCode": "AmazonEC2", "Filters": [{"Type": "EXACT", "Field": "x"}]}) == [
        "input.Filters[0].Value: required",
        "input.Filters[0].Type: 'EXACT' not one of ['TERM_MATCH']",
    ]
    assert validate(shape, {"ServiceCode": 7, "Colour": "red"}) == [
        "input.ServiceCode: expected a string", "input.Colour: unknown member",
    ]  # fmt: skip


def test_an_unreachable_endpoint_fails_and_keeps_the_file(table: Path) -> None:
    result = _refresh(table, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert result.returncode == 1
    assert (
        result.stderr.startswith("platform prices: Pricing API: Could not connect") and "Traceback" not in result.stderr
    )
    assert table.read_bytes() == BUNDLED.read_bytes()
