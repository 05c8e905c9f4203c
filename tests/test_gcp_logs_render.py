"""The rendered Cloud Logging side of a GCP platform: the hub's account (and the workers')
may write logs and nothing more of Cloud Logging, reading is the operator's; the
platform's log sink routes the entries the hub's log shipper writes into the log bucket
that `platform logs` reads (build/outputs.json `log_bucket`). Pure checks on main.tf.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.cloud.gcp_log_sink import RESOURCE_NAME_LABEL, log_name
from deploy.vm.units import agent_units
from modules.gcp.startup_script import log_name as log_prefix
from tests.support.gcp.log_filter import parse
from tests.support.gcp_render import VARIANTS, resources, stack

WRITE_ONLY = "roles/logging.logWriter"


@pytest.fixture(scope="module")
def main() -> dict:
    return stack(next(iter(VARIANTS)))


def _roles_of(main: dict, member: str) -> set[str]:
    return {b["role"] for kind in ("google_project_iam_member", "google_project_iam_binding")
            for b in resources(main, kind).values() if member in (b.get("member"), *b.get("members", []))}


def test_the_platforms_accounts_may_write_logs_and_not_read_them(main):
    accounts = resources(main, "google_service_account")
    assert "hub" in accounts
    custom = {f"${{google_project_iam_custom_role.{key}.name}}": role
              for key, role in resources(main, "google_project_iam_custom_role").items()}
    for key in accounts:
        member = f"serviceAccount:${{google_service_account.{key}.email}}"
        roles = _roles_of(main, member)
        assert {r for r in roles if r.startswith("roles/logging.")} == {WRITE_ONLY}, key
        for role in roles & custom.keys():  # custom roles grant no Cloud Logging permission at all
            assert not [p for p in custom[role]["permissions"] if p.startswith("logging.")], (key, role)
    # no grant on a log bucket or view either (the operator reads with their own credentials)
    assert not [kind for kind in main["resource"] if kind.startswith("google_logging") and "iam" in kind]


def test_the_sink_routes_the_hub_shippers_entries_into_the_bucket_platform_logs_reads(main):
    (sink,) = resources(main, "google_logging_project_sink").values()
    (bucket_key,) = resources(main, "google_logging_project_bucket_config")
    assert sink["destination"] == f"logging.googleapis.com/${{google_logging_project_bucket_config.{bucket_key}.id}}"
    assert main["output"]["log_bucket"]["value"] == f"${{google_logging_project_bucket_config.{bucket_key}.id}}"
    hub = resources(main, "google_compute_instance")["hub"]
    settings = json.loads(hub["metadata"]["startup-script"].split("<<'VMJSON'\n")[1].split("\nVMJSON")[0])
    assert settings["log_group"] == log_prefix(settings["platform"])  # the prefix `platform logs` reads by
    entry = {"logName": log_name(settings["project"], settings["log_group"], "hub/hub"),  # as CloudLoggingSink writes
             "resource": {"type": "gce_instance", "labels": {"instance_id": "1", "zone": "z", "project_id": "p"}},
             "labels": {RESOURCE_NAME_LABEL: hub["name"]}, "textPayload": "x"}
    routes = parse(sink["filter"])
    assert routes(entry)
    assert not routes({**entry, "labels": {RESOURCE_NAME_LABEL: "someone-elses-vm"}})
    units = agent_units(Path("/etc/graticule/vm.json"), Path(settings["state_dir"]), "gcp")
    assert "graticule-logship.service" in units
