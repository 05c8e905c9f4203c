"""The Cloud Logging fake (tests/support/gcp/cloud_logging.py) refuses what Google's
discovery document and Cloud Logging's rules do not allow, routes by its sinks' filters,
and lists as entries.list does (order, paging, filters)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.support.gcp.cloud_logging import running_cloud_logging
from tests.support.gcp.log_filter import FilterError, parse

PROJECT = "oceanlab-prod"
LOG = f"projects/{PROJECT}/logs/graticule-lab%2Fhub%2Fhub"
RESOURCE = {"type": "gce_instance", "labels": {"instance_id": "7", "zone": "us-central1-a", "project_id": PROJECT}}


@pytest.fixture
def fake():
    with running_cloud_logging(PROJECT) as running:
        yield running


def _write(fake, body: dict) -> requests.Response:
    return requests.post(f"{fake.url}/v2/entries:write", json=body, timeout=30)


def _list(fake, body: dict) -> requests.Response:
    return requests.post(f"{fake.url}/v2/entries:list", json=body, timeout=30)


def _stamp(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_refuses_what_the_discovery_document_does_not_allow(fake):
    unknown_field = _write(fake, {"logName": LOG, "resource": RESOURCE, "entries": [{"textPayload": "x", "colour": 1}]})
    assert unknown_field.status_code == 400 and 'Unknown name "colour"' in unknown_field.json()["error"]["message"]
    wrong_type = _write(fake, {"logName": LOG, "resource": RESOURCE, "entries": [{"textPayload": ["x"]}]})
    assert wrong_type.status_code == 400 and "textPayload" in wrong_type.json()["error"]["message"]
    bad_enum = _write(fake, {"logName": LOG, "resource": RESOURCE,
                             "entries": [{"textPayload": "x", "severity": "LOUD"}]})
    assert bad_enum.status_code == 400
    no_method = requests.post(f"{fake.url}/v2/entries:shout", json={}, timeout=30)
    assert no_method.status_code == 404
    assert fake.entries == []
    # proto3 JSON: the proto field name is as good as the camelCase one (google-cloud-logging sends dry_run)
    assert _write(fake, {"logName": LOG, "resource": RESOURCE, "dry_run": True, "entries": [{"textPayload": "x"}]}) \
        .status_code == 200
    assert fake.entries == []  # a dry run keeps nothing


def test_refuses_what_cloud_logging_does_not_take(fake):
    raw_slash = _write(fake, {"logName": f"projects/{PROJECT}/logs/a/b", "resource": RESOURCE,
                              "entries": [{"textPayload": "x"}]})
    assert raw_slash.status_code == 400 and "URL-encoded" in raw_slash.json()["error"]["message"]
    no_resource = _write(fake, {"logName": LOG, "entries": [{"textPayload": "x"}]})
    assert no_resource.status_code == 400 and "monitored resource" in no_resource.json()["error"]["message"]
    other_project = _write(fake, {"logName": "projects/elsewhere/logs/x", "resource": RESOURCE,
                                  "entries": [{"textPayload": "x"}]})
    assert other_project.status_code == 403
    too_big = _write(fake, {"logName": LOG, "resource": RESOURCE, "entries": [{"textPayload": "y" * 262_144}]})
    assert too_big.status_code == 400 and "larger than" in too_big.json()["error"]["message"]

    future = [{"textPayload": "ahead", "timestamp": _stamp(timedelta(days=2))}, {"textPayload": "now"}]
    whole = _write(fake, {"logName": LOG, "resource": RESOURCE, "entries": future})
    assert whole.status_code == 400 and "entries[0]" in whole.json()["error"]["message"]
    assert fake.texts() == []  # without partialSuccess nothing is written
    partial = _write(fake, {"logName": LOG, "resource": RESOURCE, "entries": future, "partialSuccess": True})
    assert partial.status_code == 400
    assert fake.texts() == ["now"]  # the valid one is in


def test_lists_newest_or_oldest_first_in_pages_with_filters(fake):
    stamp = _stamp()
    entries = [{"textPayload": f"line {n}", "timestamp": stamp, "insertId": f"{n:04d}"} for n in range(5)]
    entries.append({"textPayload": "other log", "logName": f"projects/{PROJECT}/logs/other"})
    assert _write(fake, {"logName": LOG, "resource": RESOURCE, "entries": entries}).status_code == 200

    page = _list(fake, {"resourceNames": [f"projects/{PROJECT}"], "filter": f'logName="{LOG}"',
                        "orderBy": "timestamp desc", "pageSize": 2}).json()
    assert [e["textPayload"] for e in page["entries"]] == ["line 4", "line 3"]  # equal timestamps: insertId order
    rest = _list(fake, {"resourceNames": [f"projects/{PROJECT}"], "filter": f'logName="{LOG}"',
                        "orderBy": "timestamp desc", "pageSize": 2, "pageToken": page["nextPageToken"]}).json()
    assert [e["textPayload"] for e in rest["entries"]] == ["line 2", "line 1"]
    oldest = _list(fake, {"resourceNames": [f"projects/{PROJECT}"], "filter": f'logName="{LOG}"'}).json()
    assert oldest["entries"][0]["textPayload"] == "line 0" and "nextPageToken" not in oldest
    later = _list(fake, {"resourceNames": [f"projects/{PROJECT}"],
                         "filter": f'logName="{LOG}" AND timestamp>"{stamp}"'}).json()
    assert later == {}

    for refused in ({"resourceNames": [f"projects/{PROJECT}"], "orderBy": "insertId"},
                    {"resourceNames": [f"projects/{PROJECT}"], "pageSize": -1},
                    {"resourceNames": [f"projects/{PROJECT}"], "filter": "logName = = x"},
                    {"resourceNames": []}):
        assert _list(fake, refused).status_code == 400, refused
    nowhere = f"projects/{PROJECT}/locations/us-central1/buckets/no/views/_AllLogs"
    missing_view = _list(fake, {"resourceNames": [nowhere]})
    assert missing_view.status_code == 404


def test_sinks_route_what_their_filter_matches_into_their_bucket(fake):
    bucket = f"projects/{PROJECT}/locations/us-central1/buckets/lab-logs"
    fake.add_sink(bucket, 'resource.type="gce_instance" AND labels."compute.googleapis.com/resource_name"=~"^lab-"')
    labelled = {"compute.googleapis.com/resource_name": "lab-hub"}
    _write(fake, {"logName": LOG, "resource": RESOURCE, "labels": labelled, "entries": [{"textPayload": "routed"}]})
    _write(fake, {"logName": LOG, "resource": RESOURCE, "entries": [{"textPayload": "unlabelled"}]})
    assert fake.texts() == ["routed", "unlabelled"]
    view = _list(fake, {"resourceNames": [f"{bucket}/views/_AllLogs"]}).json()
    assert [e["textPayload"] for e in view["entries"]] == ["routed"]


def test_filter_language_subset():
    entry = {"logName": LOG, "timestamp": "2026-01-01T00:00:01.500000Z", "resource": RESOURCE,
             "labels": {"compute.googleapis.com/resource_name": "lab-hub"}}
    assert parse(f'logName="{LOG}" timestamp>="2026-01-01T00:00:01Z"')(entry)  # juxtaposition is AND
    assert not parse('timestamp>"2026-01-01T00:00:01.5Z"')(entry)  # instants, not strings
    assert parse('resource.labels.zone:"central"')(entry)
    assert parse('resource.type="x" OR NOT resource.type="y"')(entry)
    assert not parse('resource.type="x" AND resource.type="gce_instance" OR resource.type="z"')(entry)
    for malformed in ('logName="x', "AND", "(logName=x", 'logName=~"("'):
        with pytest.raises(FilterError):
            parse(malformed)
