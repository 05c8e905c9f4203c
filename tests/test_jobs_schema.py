"""The `jobs:` section: defaults resolved by render, next run times (`platform jobs next`,
`validate --explain`), and the pure slot decision across time zones and restarts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from deploy.cli.main import main
from deploy.jobs import slots
from render import cron
from render.build import render
from render.job_spec import JOBS_FILE, Schedule, load_jobs, load_owner_emails
from render.validate import validate_text

JOBS = """
jobs:
  nightly-sst:
    owner: alice
    run: {notebook: sst.ipynb, parameters: {days: 7, region: pacific}}
    schedule: {cron: "30 2 * * *", timezone: Europe/Paris, missed: skip}
    cluster: {workers: 2}
    retries: 2
    retry_backoff: 5m
    timeout: 2h
    notify: [ops@oceanlab.org]
  thesis:
    owner: bob
    run: {script: run.py, repository: "https://github.com/oceanlab/thesis.git", ref: main}
"""


@pytest.fixture
def v2_text(example_text) -> str:
    return example_text.replace("apiVersion: graticule/v1", "apiVersion: graticule/v2") + JOBS


def test_render_resolves_each_jobs_defaults(v2_text):
    platform = validate_text(v2_text)
    jobs = load_jobs(render(platform, "local")[JOBS_FILE].decode())
    sst, thesis = jobs["nightly-sst"], jobs["thesis"]
    assert sst.schedule == Schedule("30 2 * * *", "Europe/Paris", "skip")
    assert (sst.spec.kind, sst.spec.path) == ("notebook", "sst.ipynb")
    assert sst.spec.parameters == {"days": 7, "region": "pacific"}
    assert sst.spec.profile == "small" and sst.spec.environment == "default"  # hub default, first granted
    assert sst.spec.cluster == {"profile": "small", "workers": 2, "adaptive": None}  # dask.default_profile
    assert (sst.spec.timeout_s, sst.spec.retries, sst.spec.retry_backoff_s) == (7200, 2, 300)
    assert sst.spec.notify == ["ops@oceanlab.org", "alice@oceanlab.org"]  # the owner is told too
    assert thesis.schedule is None and thesis.spec.kind == "script"
    emails = load_owner_emails(render(platform, "local")[JOBS_FILE].decode())
    assert emails == {"alice": "alice@oceanlab.org", "bob": "bob@oceanlab.org"}  # carol has none
    assert (thesis.spec.repository, thesis.spec.ref) == ("https://github.com/oceanlab/thesis.git", "main")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("run: {script: run.py,", "run: {script: run.py, notebook: a.ipynb,", "say what to run"),
        ("cluster: {workers: 2}", "cluster: {workers: 2, adaptive: [0, 4]}", "not both"),
        ("cluster: {workers: 2}", "cluster: {adaptive: [5, 4]}", "over its maximum"),
        ("run: {notebook: sst.ipynb,", "run: {notebook: ../sst.ipynb,", "relative path inside"),
    ],
)
def test_job_mistakes_are_located(tmp_path, v2_text, capsys, old, new, message):
    assert old in v2_text
    text = v2_text.replace(old, new)
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and message in err and "Traceback" not in err


def test_next_run_times_are_shown_in_the_jobs_time_zone(tmp_path, v2_text, capsys):
    path = tmp_path / "platform.yaml"
    path.write_text(v2_text)
    assert main(["jobs", "next", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "thesis: on demand only" in out
    sst = next(line for line in out.splitlines() if line.startswith("nightly-sst"))
    assert sst.count("02:30 CE") == 3  # CET or CEST: 02:30 Paris time, three times
    assert main(["validate", str(path), "--explain"]) == 0
    assert "nightly-sst (30 2 * * *, Europe/Paris): next " in capsys.readouterr().out


def test_next_times_follow_daylight_saving_time():
    before_switch = datetime(2026, 3, 27, 12, 0, tzinfo=UTC).timestamp()
    times = cron.next_times("30 9 * * *", "Europe/Paris", before_switch)
    assert [t.astimezone(UTC).hour for t in times] == [8, 7, 7]  # 09:30 CET, then CEST


HOURLY = Schedule("0 * * * *", "UTC", "run_once")
NOON = datetime(2026, 11, 15, 12, 0, tzinfo=UTC).timestamp()


def test_a_job_seen_for_the_first_time_is_scheduled_from_now():
    assert slots.due(HOURLY, None, NOON + 1) == slots.Due([], [], NOON + 1)


def test_a_slot_is_due_once_when_reached():
    assert slots.due(HOURLY, NOON - 10, NOON - 1) == slots.Due([], [], NOON - 1)
    assert slots.due(HOURLY, NOON - 1, NOON + 5) == slots.Due([NOON], [], NOON + 5)
    assert slots.due(HOURLY, NOON + 5, NOON + 9) == slots.Due([], [], NOON + 9)


def test_missed_slots_collapse_to_one_run_or_none():
    down_since = NOON - 3 * 3600 - 10  # missed 09:00, 10:00, 11:00 and 12:00 (now 12:30)
    once = slots.due(HOURLY, down_since, NOON + 1800)
    assert once.run == [NOON] and once.skip == [NOON - 3 * 3600, NOON - 2 * 3600, NOON - 3600]
    skip = slots.due(Schedule("0 * * * *", "UTC", "skip"), down_since, NOON + 1800)
    assert skip.run == [] and len(skip.skip) == 4
    # a slot reached late but within the on-time window runs even under `skip`
    assert slots.due(Schedule("0 * * * *", "UTC", "skip"), NOON - 5, NOON + 100).run == [NOON]


def test_a_clock_that_steps_back_schedules_nothing():
    assert slots.due(HOURLY, NOON + 100, NOON + 50) == slots.Due([], [], NOON + 100)


def test_jobs_file_is_deterministic(v2_text):
    platform = validate_text(v2_text)
    first, second = render(platform, "local")[JOBS_FILE], render(platform, "local")[JOBS_FILE]
    assert first == second and json.loads(first)["jobs"].keys() == {"nightly-sst", "thesis"}
