"""cost.json's notebook homes: on aws one gp3 volume per user (deploy.cloud.home_volumes), on
gcp one pd-balanced persistent disk per user (deploy.cloud.gcp_home_disks), at the dated
table's price for the region; what the spawner makes is what is priced."""

from __future__ import annotations

import json

from deploy.cloud.gcp_home_disks import DISK_TYPE, GCPHomeDisks
from deploy.cloud.home_volumes import DEFAULT_SIZE_GIB
from render.cost import render_cost
from render.validate import validate_text


def _cost(example_text: str, target: str, region: str | None = None) -> dict:
    text = example_text.replace("target: local ", f"target: {target:<6}")
    if region:
        text = text.replace("region: us-west-2", f"region: {region}", 1)
    return json.loads(render_cost(validate_text(text), target)["cost.json"])


def test_aws_prices_a_home_volume_per_user_apart_from_the_fixed_total(example_text):
    document = _cost(example_text, "aws")
    homes = document["notebook_homes"]
    users = len(validate_text(example_text).users)
    assert homes["size_gib"] == DEFAULT_SIZE_GIB == 20 and homes["storage"] == "ebs-gp3-per-user"
    assert homes["per_gb_monthly_usd"] == 0.08  # us-west-2 gp3, $0.08 per GB-month
    assert homes["per_user_monthly_usd"] == 1.60 and homes["users"] == users == 3
    assert homes["monthly_usd_at_most"] == 4.80
    assert "notebook" not in " ".join(document["fixed_monthly"]["items"])  # not paid while nobody has a home


def test_the_regions_gp3_price_is_used_and_the_local_target_has_no_homes(example_text):
    assert _cost(example_text, "aws", "eu-west-1")["notebook_homes"]["per_user_monthly_usd"] == 1.76  # $0.088
    assert "notebook_homes" not in _cost(example_text, "local")


def test_gcp_prices_a_pd_balanced_disk_per_user(example_text):
    document = _cost(example_text, "gcp")
    homes = document["notebook_homes"]
    assert DISK_TYPE == "pd-balanced" and homes["storage"] == "pd-balanced-per-user"
    assert homes["size_gib"] == GCPHomeDisks(None, "p").size_gib == 20  # what the spawner makes
    assert homes["per_gb_monthly_usd"] == 0.10  # us-central1 pd-balanced, $0.10 per GB-month
    assert homes["per_user_monthly_usd"] == 2.00 and homes["monthly_usd_at_most"] == 6.00
    assert "notebook" not in " ".join(document["fixed_monthly"]["items"])
    europe = example_text.replace("region: us-central1", "region: europe-west1", 1)
    assert _cost(europe, "gcp")["notebook_homes"]["per_user_monthly_usd"] == 2.20  # $0.11
