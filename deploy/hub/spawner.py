"""Notebook servers as local processes, sized by the user's chosen hardware profile.

JupyterHub's LocalProcessSpawner runs servers as Unix users; platform users are not Unix
accounts, so servers run as the hub's own OS user, each in a working directory of its
own under the state directory. The spawn form offers only the profiles and environments
the user's groups grant (rendered into `entitlements`), and the choice is checked again
here, server-side, whether it came from the form or from the REST API.
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner
from tornado import web
from traitlets import Dict, List, Unicode, default
from traitlets.config import Configurable

from deploy.runtime import env as contract  # `env` is the spawner's own word here

# Passed from the hub's environment to every notebook server: the gateway address (so
# `dask_gateway.Gateway()` needs no arguments) and the state-dir marker `platform down`
# uses to find every process of this platform.
_INHERITED = (contract.STATE_DIR, contract.HUB_URL, contract.GATEWAY_URL, contract.GATEWAY_SCHEDULER_URL)


class ProfileChoices(Configurable):
    """What every target's spawner shares (mixed in before JupyterHub's Spawner class): the
    profiles and environments a user may choose (the form, and the server-side check), and
    what a server learns about its profile and the gateway."""

    profiles = Dict(config=True, help="profile name -> {cpu, memory (bytes), gpu}")
    environments = Dict(config=True, help="environment name -> {python}")
    entitlements = Dict(config=True, help="user -> {profiles, environments, default_profile}")

    @default("options_form")
    def _options_form(self):
        return _spawn_form  # called per spawn with this spawner

    def granted(self) -> dict:
        return self.entitlements.get(self.user.name, {"profiles": [], "environments": []})

    def options_from_form(self, formdata: dict) -> dict:
        return {key: formdata[key][0] for key in ("profile", "environment") if formdata.get(key)}

    def chosen(self) -> tuple[str, str | None]:
        """The (profile, environment) to start, validated against the user's grants."""
        granted = self.granted()
        options = self.user_options or {}
        profile = options.get("profile") or granted.get("default_profile")
        if profile not in granted["profiles"]:
            allowed = ", ".join(granted["profiles"]) or "none"
            raise web.HTTPError(
                400, f"profile {profile!r} is not available to {self.user.name} (allowed: {allowed})"
            )
        environment = options.get("environment") or next(iter(granted["environments"]), None)
        if environment is not None and environment not in granted["environments"]:
            allowed = ", ".join(granted["environments"]) or "none"
            raise web.HTTPError(
                400, f"environment {environment!r} is not available to {self.user.name} (allowed: {allowed})"
            )
        return profile, environment

    def platform_env(self, env: dict, gateway_url: str | None, scheduler_url: str | None) -> dict:
        """The chosen profile and environment, the gateway's addresses and thread limits."""
        # Make dask_gateway.Gateway() in a notebook find this platform's gateway.
        if gateway_url:
            env["DASK_GATEWAY__ADDRESS"] = gateway_url
            env["DASK_GATEWAY__AUTH__TYPE"] = "jupyterhub"
        if scheduler_url:
            env["DASK_GATEWAY__PROXY_ADDRESS"] = scheduler_url
        profile, environment = self.chosen()
        env[contract.PROFILE] = profile
        if environment:
            env[contract.ENVIRONMENT] = environment
        cpu = self.profiles[profile]["cpu"]
        # Libraries that size thread pools from the machine honour these limits instead.
        env.update(OMP_NUM_THREADS=str(cpu), MKL_NUM_THREADS=str(cpu), OPENBLAS_NUM_THREADS=str(cpu))
        return env


class ProfileSpawner(ProfileChoices, LocalProcessSpawner):
    """Servers as local processes of the hub's machine (the local target)."""

    workdir_root = Unicode(config=True, help="users' working directories are <workdir_root>/<name>")
    logs_dir = Unicode(config=True, help="each server logs to <logs_dir>/<name>.log")
    cmd = List([sys.executable, "-m", "jupyterhub.singleuser"], config=True)

    @default("env_keep")
    def _env_keep(self) -> list[str]:
        return ["PATH", "PYTHONPATH", "LANG", "LC_ALL", "VIRTUAL_ENV", *_INHERITED]

    @property
    def workdir(self) -> Path:
        return Path(self.workdir_root) / self.user.name

    def get_args(self) -> list[str]:
        args = super().get_args()
        if os.geteuid() == 0:  # containers often run everything as root; Jupyter refuses without this
            args.append("--ServerApp.allow_root=True")
        return args

    def make_preexec_fn(self, name: str):
        return None  # no user switch: every server runs as the hub's OS user

    def user_env(self, env: dict) -> dict:
        env["USER"] = self.user.name
        env["HOME"] = str(self.workdir)
        env["SHELL"] = "/bin/bash"
        return env

    def get_env(self) -> dict:
        env = self.platform_env(super().get_env(), os.environ.get(contract.GATEWAY_URL),
                                os.environ.get(contract.GATEWAY_SCHEDULER_URL))
        if os.environ.get(contract.STATE_DIR):  # one kernel per granted environment
            from deploy.environments.kernels import prepare

            granted = self.granted()["environments"]
            env.update(prepare(Path(os.environ[contract.STATE_DIR]), self.user.name, granted))
        return env

    async def start(self):
        profile, _ = self.chosen()  # refuse before anything starts
        size = self.profiles[profile]
        self.cpu_limit = float(size["cpu"])  # JupyterHub exports CPU_LIMIT / MEM_LIMIT
        self.mem_limit = int(size["memory"])
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        Path(self.logs_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        log = open(Path(self.logs_dir) / f"{self.user.name}.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.notebook_dir = str(self.workdir)
        self.popen_kwargs = {"cwd": str(self.workdir), "stdout": log, "stderr": subprocess.STDOUT}
        try:
            return await super().start()
        finally:
            log.close()


def _spawn_form(spawner) -> str:
    granted = spawner.granted()
    default_profile = granted.get("default_profile")
    if not granted["profiles"]:
        return (
            '<p class="alert alert-warning" id="no-profiles">No hardware profile is granted to '
            f"{html.escape(spawner.user.name)}: ask an admin to add you to a group with profiles "
            "in platform.yaml.</p>"
        )

    def option(name: str, label: str, selected: bool) -> str:
        mark = " selected" if selected else ""
        return f'<option value="{html.escape(name)}"{mark}>{html.escape(label)}</option>'

    profiles = "".join(
        option(name, _profile_label(name, spawner.profiles[name]), name == default_profile)
        for name in granted["profiles"]
    )
    parts = [
        '<div class="form-group">',
        '<label for="profile">Hardware profile</label>',
        f'<select class="form-select" name="profile" id="profile">{profiles}</select>',
        "</div>",
    ]
    if granted["environments"]:
        environments = "".join(
            option(name, f"{name} (Python {spawner.environments[name]['python']})", index == 0)
            for index, name in enumerate(granted["environments"])
        )
        parts += [
            '<div class="form-group">',
            '<label for="environment">Environment</label>',
            f'<select class="form-select" name="environment" id="environment">{environments}</select>',
            "</div>",
        ]
    return "\n".join(parts)


def _profile_label(name: str, size: dict) -> str:
    label = f"{name}: {size['cpu']} CPU, {size['memory'] / 2**30:g} GiB"
    if size.get("gpu"):
        label += f", {size['gpu']['count']} x {size['gpu']['type']}"
    return label
