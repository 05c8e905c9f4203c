"""Notebook servers on VMs of their own (the aws and gcp targets): never on the hub's machine.

Each server is an instance launched through the machines layer from the chosen profile's
launch/instance template (tags or labels `platform`, `role = notebook`, `user`, `budget`,
`server`), as the user's worker identity (their bucket grants), always on-demand (a spot
reclaim would take the user's kernels and unsaved work with it). Its boot script
(`deploy.vm.machine_boot`, GCP's variant) holds no secret: the server's environment, its
hub API token included, is a machine secret (`server-<user>[-<name>]`) that only this
instance and the hub may read, deleted when the server stops. The machine installs the
platform's wheelhouse (the single-user server) and the user's environment, mounts the
user's home (an EBS volume or a persistent disk: `deploy.cloud.home_volumes`,
`deploy.cloud.gcp_home_disks`; why a block volume, and why the server is pinned to its zone)
and runs `jupyterhub-singleuser` on SERVER_PORT, talking to the hub over the private
network through the hub's proxy (`hub_private_ip`:8000, open only to the notebooks'
security group or network tag). What differs between the clouds is in `deploy.hub.vm_clouds`
(`cloud`: aws or gcp).

Its machine is paid by the user's budget (`deploy.hub.server_meter`): admitted before
anything is made (a budget that cannot pay refuses the spawn, naming itself), charged from
the instance's launch at the profile's on-demand price, closed when it stops. A user
without a budget still gets a server, unmetered, as on the local target (their instance
carries no `budget` tag; the hub's IAM policy allows that for notebook instances only).

`start` returns as soon as the instance runs with the home attached; JupyterHub then
waits (`http_timeout`) for the server to answer. The instance id is saved in the
spawner's state, so a restarted hub finds it again (`load_state`, `poll`); `stop` (the
idle culler's too) terminates the instance and deletes the secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets as tokens
from pathlib import Path

from jupyterhub.spawner import Spawner
from tornado import web
from traitlets import Dict, Float, Integer, Unicode, default

from deploy.budgets.admission import BudgetExceeded
from deploy.cloud.deadman import DEFAULT_AFTER_SECONDS, DeadMan
from deploy.cloud.home_volumes import DEFAULT_SIZE_GIB, HomeVolume, home_mount_point
from deploy.cloud.machine_boot import PLATFORM_VENV, MachineBoot
from deploy.cloud.machines import (
    NOTEBOOK_ROLE,
    TAG_BUDGET,
    TAG_PLATFORM,
    TAG_ROLE,
    TAG_SERVER,
    TAG_USER,
    Machine,
    MachinesError,
    MachineSpec,
)
from deploy.hub.server_meter import ServerMeter
from deploy.hub.spawner import ProfileChoices
from deploy.hub.vm_clouds import CLOUDS
from deploy.runtime import env as contract
from deploy.vm.environment_wheels import published_keys
from modules.naming import HUB_PORT, SCHEDULER_PORT
from render.hub_config import GATEWAY_PATH

SERVER_PORT = 8888
HUB_PROXY_PORT = HUB_PORT  # the hub VM's proxy: the hub's API and the gateway behind it
VM_PATH = f"{PLATFORM_VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class VMSpawner(ProfileChoices, Spawner):
    platform_name = Unicode(config=True, help="the platform's name (its `platform` tag)")
    cloud = Unicode("aws", config=True, help="the cloud of the platform's machines: aws or gcp")
    templates_dir = Unicode(config=True, help="the rendered workers/<profile>.json")
    outputs_file = Unicode(config=True, help="Terraform's outputs.json, as published with the configuration")
    budgets = Dict(config=True, help="user -> the budget that pays for them (the `budget` tag)")
    policy_file = Unicode("", config=True, help="the rendered gateway/platform.json (budgets, who pays, prices): "
                                                "servers are metered in the usage ledger; empty: they are not")
    ledger_dir = Unicode(config=True, help="the state directory of the usage ledger (unless its URL is set)")
    server_port = Integer(SERVER_PORT, config=True)
    home_size_gib = Integer(DEFAULT_SIZE_GIB, config=True, help="size of a new user's home volume")
    deadman_after = Float(DEFAULT_AFTER_SECONDS, config=True,
                          help="seconds without an answer from the hub before the machine powers off")
    poll_every = Float(2.0, config=True, help="seconds between looks at a starting instance")
    attach_timeout = Float(600.0, config=True, help="seconds to wait for the instance and the home volume")

    machine_id = Unicode("")
    private_ip = Unicode("")
    zone = Unicode("")
    volume_id = Unicode("")

    @default("env_keep")
    def _env_keep(self) -> list[str]:
        return []  # nothing of the hub machine's environment belongs on the user's machine

    @default("ledger_dir")
    def _ledger_dir(self) -> str:
        return os.environ.get(contract.STATE_DIR, "")

    @default("start_timeout")
    def _start_timeout(self) -> int:
        return 900  # a VM: boot, install, volume

    @default("http_timeout")
    def _http_timeout(self) -> int:
        return 600

    # -- what the platform published -------------------------------------------------------

    def outputs(self) -> dict:
        return json.loads(Path(self.outputs_file).read_text())

    def worker_template(self, profile: str) -> dict:
        return json.loads((Path(self.templates_dir) / f"{profile}.json").read_text())

    def environment_key(self, environment: str | None) -> str | None:
        """The wheel-cache key of the environment's wheels in the bucket; None: the platform's
        software only. Apply writes them beside the workers (as the gateway reads them)."""
        return published_keys(Path(self.templates_dir).parent).get(environment) if environment else None

    def worker_template_any(self) -> dict:
        first = sorted(Path(self.templates_dir).glob("*.json"))[0]
        return json.loads(first.read_text())

    @property
    def region(self) -> str:
        """Every profile's template names the platform's region (as the gateway reads it)."""
        return self.worker_template_any()["region"]

    @property
    def hub_private_url(self) -> str:
        return f"http://{self.outputs()['hub_private_ip']}:{HUB_PROXY_PORT}"

    @default("hub_connect_url")
    def _hub_connect_url(self) -> str:
        return self.hub_private_url  # JUPYTERHUB_API_URL: the hub's API through its proxy

    # -- the clients (tests set their own) ------------------------------------------------------

    # Made in a worker thread (`_connect`), by the cloud's part (deploy.hub.vm_clouds).

    @property
    def on_cloud(self):
        if getattr(self, "_cloud_part", None) is None:
            if self.cloud not in CLOUDS:
                raise web.HTTPError(500, f"no notebook servers on VMs for cloud {self.cloud!r}")
            self._cloud_part = CLOUDS[self.cloud](self)
        return self._cloud_part

    @property
    def machines(self):
        if getattr(self, "_machines", None) is None:
            self._machines = self.on_cloud.make_machines()
        return self._machines

    @machines.setter
    def machines(self, value) -> None:
        self._machines = value

    @property
    def homes(self):
        if getattr(self, "_homes", None) is None:
            self._homes = self.on_cloud.make_homes()
        return self._homes

    @homes.setter
    def homes(self, value) -> None:
        self._homes = value

    @property
    def machine_secrets(self):
        if getattr(self, "_secrets", None) is None:
            self._secrets = self.on_cloud.make_secrets()
        return self._secrets

    @machine_secrets.setter
    def machine_secrets(self, value) -> None:
        self._secrets = value

    async def _connect(self) -> None:
        await asyncio.to_thread(lambda: (self.machines, self.homes, self.machine_secrets))

    # -- naming ----------------------------------------------------------------------------------

    @property
    def server_tag(self) -> str:
        return f"{self.user.name}/{self.name}" if self.name else self.user.name

    @property
    def secret_key(self) -> str:
        # `platform destroy` finds it again from the instance's `server` tag (deploy.targets.cloud)
        return "server-" + self.server_tag.replace("/", "-")

    @property
    def home(self) -> str:
        return home_mount_point(self.user.name)

    # -- the server's environment and command ------------------------------------------------------

    def get_env(self) -> dict:
        env = super().get_env()
        hub = self.hub_private_url
        scheduler = f"tls://{self.outputs()['hub_private_ip']}:{SCHEDULER_PORT}"
        env = self.platform_env(env, hub + GATEWAY_PATH, scheduler)
        env.update({contract.HUB_URL: hub, contract.GATEWAY_URL: hub + GATEWAY_PATH,
                    contract.GATEWAY_SCHEDULER_URL: scheduler,
                    "HOME": self.home, "USER": self.user.name, "SHELL": "/bin/bash", "PATH": VM_PATH,
                    "LANG": "C.UTF-8"})
        return env

    def server_command(self) -> list[str]:
        python = f"{PLATFORM_VENV}/bin/python"
        return [python, "-m", "deploy.vm.notebook_server", "--home", self.home, "--device", self.on_cloud.home_device,
                "--",
                python, "-m", "jupyterhub.singleuser", "--ServerApp.allow_root=True", *self.get_args()]

    def budget(self) -> str | None:
        """The budget that pays for the user's servers; None: nobody does (unmetered)."""
        return self.budgets.get(self.user.name) or None

    def machine_spec(self, profile: str, environment: str | None, budget: str | None,
                     home: HomeVolume | None = None) -> MachineSpec:
        template = self.worker_template(profile)
        outputs = self.outputs()
        on_cloud = self.on_cloud
        bucket = outputs["artifacts_bucket"]
        boot = MachineBoot(platform=self.platform_name, region=self.region, bucket=bucket,
                           secret=on_cloud.secret_name(self.secret_key), command=self.server_command(),
                           environment=self.environment_key(environment),
                           platform_software=True)
        tags = {TAG_PLATFORM: self.platform_name, TAG_ROLE: NOTEBOOK_ROLE, TAG_USER: self.user.name,
                TAG_SERVER: self.server_tag, **({TAG_BUDGET: budget} if budget else {})}
        suffix = tokens.token_hex(3)  # a new name, so a new ClientToken, for every start
        return MachineSpec(
            name=f"{self.platform_name}-nb-{self.user.name}-{suffix}"[:63],
            template=on_cloud.template_of(template), tags=tags, user_data=on_cloud.boot_script(boot),
            spot=False, deadman=DeadMan(f"{self.hub_private_url}/hub/health", after_seconds=self.deadman_after),
            instance_profile=on_cloud.identity(self.user.name), security_groups=on_cloud.network_groups(),
            disks=on_cloud.home_disks(home) if home is not None else {},
        )

    # -- JupyterHub's Spawner API -------------------------------------------------------------------

    async def start(self):
        profile, environment = self.chosen()  # refuse before anything is made
        budget = self.budget()
        await self._admit(profile)  # from here the budget counts the machine (or refuses it)
        try:
            return await self._start(profile, environment, budget)
        except BaseException:
            await self._close_usage("not started")
            raise

    async def _start(self, profile: str, environment: str | None, budget: str | None):
        size = self.profiles[profile]
        self.cpu_limit, self.mem_limit = float(size["cpu"]), int(size["memory"])
        self.ip, self.port = "0.0.0.0", self.server_port  # where the server binds, on its machine
        self.notebook_dir = self.home
        await self._connect()
        on_cloud = self.on_cloud
        volume = await asyncio.to_thread(on_cloud.home, self.user.name, {TAG_BUDGET: budget} if budget else {})
        self.volume_id, self.zone = volume.id, volume.zone
        spec = self.machine_spec(profile, environment, budget, volume)
        await asyncio.to_thread(self.machine_secrets.put, self.secret_key, {"env": self.get_env()},
                                {TAG_USER: self.user.name, TAG_SERVER: self.server_tag})
        try:
            machine = await asyncio.to_thread(on_cloud.launch, spec, volume)
        except MachinesError as error:
            await asyncio.to_thread(self.machine_secrets.delete, self.secret_key)
            raise web.HTTPError(503, f"{self.user.name}'s {profile} server could not start in {volume.zone}, "
                                     f"the zone of their home: {error}") from None
        self.machine_id, self.private_ip = machine.id, machine.private_ip or ""
        try:
            await self._attach_usage(profile, machine)
            await asyncio.to_thread(self.machine_secrets.allow, self.secret_key, [machine.id])
            machine = await self._wait_running(machine.id)
            self.private_ip = machine.private_ip or self.private_ip
            await asyncio.to_thread(on_cloud.after_running, machine, volume)
        except Exception:
            await self._release("not started")
            raise
        self.log.info("%s: server on %s (%s, %s) in %s", self.user.name, machine.id, profile, self.private_ip,
                      volume.zone)
        return self.private_ip, self.server_port

    async def _wait_running(self, machine_id: str) -> Machine:
        deadline = asyncio.get_running_loop().time() + self.attach_timeout
        while True:
            found = (await asyncio.to_thread(self.machines.describe, [machine_id])).get(machine_id)
            if found is None or not found.alive:
                raise MachinesError(f"instance {machine_id} ended while starting ({found.state if found else 'gone'})")
            if found.state == "running" and found.private_ip:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise MachinesError(f"instance {machine_id} not running after {self.attach_timeout:.0f} s")
            await asyncio.sleep(self.poll_every)

    async def _release(self, reason: str = "stopped") -> None:
        await self._connect()
        if self.machine_id:
            await asyncio.to_thread(self.machines.terminate, [self.machine_id])
        await asyncio.to_thread(self.machine_secrets.delete, self.secret_key)
        await self._close_usage(reason)

    # -- usage (deploy.hub.server_meter) ------------------------------------------------------------

    def meter(self) -> ServerMeter | None:
        return ServerMeter.open(self.policy_file, self.ledger_dir) if self.policy_file else None

    async def _admit(self, profile: str) -> None:
        meter = await asyncio.to_thread(self.meter)
        if meter is None:
            return
        try:
            metered = await asyncio.to_thread(meter.admit, self.user.name, self.server_tag, profile)
        except BudgetExceeded as refused:
            raise _refusal(403, str(refused)) from None
        if not metered:
            self.log.info("%s has no budget: their %s server is not metered", self.user.name, profile)

    async def _attach_usage(self, profile: str, machine: Machine) -> None:
        meter = await asyncio.to_thread(self.meter)
        if meter is not None:
            launched = machine.launched_at.timestamp() if machine.launched_at else None
            await asyncio.to_thread(meter.attach, self.server_tag, profile, machine.id, launched)

    async def _close_usage(self, reason: str) -> None:
        meter = await asyncio.to_thread(self.meter)
        if meter is not None:
            await asyncio.to_thread(meter.stopped, self.server_tag, reason)

    async def poll(self):
        if not self.machine_id:
            return 0
        await self._connect()
        found = (await asyncio.to_thread(self.machines.describe, [self.machine_id])).get(self.machine_id)
        return None if found is not None and found.alive else 1

    async def stop(self, now: bool = False) -> None:
        await self._release("server stopped")  # the home detaches itself as the instance goes

    def get_state(self) -> dict:
        state = super().get_state()
        for key in ("machine_id", "private_ip", "zone", "volume_id"):
            if getattr(self, key):
                state[key] = getattr(self, key)
        return state

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        for key in ("machine_id", "private_ip", "zone", "volume_id"):
            setattr(self, key, state.get(key, ""))

    def clear_state(self) -> None:
        super().clear_state()
        self.machine_id = self.private_ip = self.zone = self.volume_id = ""


def _refusal(status: int, message: str) -> web.HTTPError:
    """An HTTP error whose message JupyterHub shows the user as it is (its spawn page)."""
    error = web.HTTPError(status, message)
    error.jupyterhub_message = message
    return error
