"""The contract between render and the jobs scheduler: `jobs/jobs.json`.

`RunSpec` says everything a run's driver needs (what to run, where, with what cluster,
limits, who to tell); a declared job is a RunSpec with a `Schedule`. Defaults are
resolved here, once: the driver's profile and the environment fall back to what the
owner is granted, the notify list gains the owner's e-mail. Pure, like every renderer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from render import entitlements
from render.schema import Job, Platform

JOBS_FILE = "jobs/jobs.json"


@dataclass(frozen=True)
class Schedule:
    cron: str
    timezone: str
    missed: str  # run_once | skip


@dataclass(frozen=True)
class RunSpec:
    name: str
    owner: str
    kind: str  # script | notebook | callable
    path: str | None  # relative to the owner's home, or to the repository
    profile: str  # the driver's
    environment: str | None
    repository: str | None = None
    ref: str | None = None
    parameters: dict = field(default_factory=dict)
    cluster: dict | None = None  # {"profile", "workers", "adaptive": [min, max]}
    timeout_s: int = 3600
    retries: int = 0
    retry_backoff_s: int = 60
    notify: list[str] = field(default_factory=list)
    uploaded: bool = False  # submitted from the SDK: the file or callable came with the run

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class DeclaredJob:
    spec: RunSpec
    schedule: Schedule | None

    @classmethod
    def from_dict(cls, data: dict) -> DeclaredJob:
        schedule = data.get("schedule")
        return cls(RunSpec.from_dict(data["spec"]), Schedule(**schedule) if schedule else None)


def declared_spec(platform: Platform, name: str, job: Job) -> RunSpec:
    owner = platform.user(job.owner)
    assert owner is not None  # validation: the owner is a user
    profile = job.profile or entitlements.default_profile_for(platform, owner, platform.hub.default_profile)
    environments = entitlements.environments_of(platform, owner)
    cluster = None
    if job.cluster is not None:
        cluster_profile = job.cluster.profile or entitlements.default_profile_for(
            platform, owner, platform.dask.default_profile
        )
        cluster = {"profile": cluster_profile, "workers": job.cluster.workers,
                   "adaptive": list(job.cluster.adaptive) if job.cluster.adaptive else None}
    notify = list(job.notify)
    if owner.email and owner.email not in notify:
        notify.append(owner.email)
    run = job.run
    return RunSpec(
        name=name,
        owner=job.owner,
        kind="notebook" if run.notebook else "script",
        path=run.notebook or run.script,
        profile=profile or platform.hub.default_profile,
        environment=job.environment or (environments[0] if environments else None),
        repository=run.repository,
        ref=run.ref,
        parameters=dict(run.parameters),
        cluster=cluster,
        timeout_s=job.timeout,
        retries=job.retries,
        retry_backoff_s=job.retry_backoff,
        notify=notify,
    )


def render_jobs(platform: Platform) -> dict[str, bytes]:
    jobs = {}
    for name, job in sorted(platform.jobs.items()):
        schedule = job.schedule
        jobs[name] = {
            "spec": asdict(declared_spec(platform, name, job)),
            "schedule": asdict(Schedule(schedule.cron, schedule.timezone, schedule.missed)) if schedule else None,
        }
    # whom to tell about the runs users submit from the SDK, which name no one to notify
    emails = {user.name: user.email for user in platform.users if user.email}
    document = {"jobs": jobs, "owner_emails": emails}
    return {JOBS_FILE: (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()}


def load_jobs(text: str) -> dict[str, DeclaredJob]:
    return {name: DeclaredJob.from_dict(data) for name, data in json.loads(text)["jobs"].items()}


def load_owner_emails(text: str) -> dict[str, str]:
    return dict(json.loads(text).get("owner_emails", {}))
