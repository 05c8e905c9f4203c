"""`platform status`, `logs` and `token` for a platform applied on AWS, without SSH.

What apply wrote to `build/outputs.json` says where things are: the hub instance, the
hub's public URL (or `GRATICULE_CLOUD_HUB_URL`, for a tunnel or a test), the log group,
the region. The instance's state comes from EC2, the hub's and the gateway's health from
the hub URL (the load balancer's path, as a user's browser takes it), logs from the
CloudWatch streams `hub/<component>` that the VM's log shipper fills, and a user's token
from the hub's REST API, authorized by the admin token the hub VM keeps in Secrets Manager.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from deploy.cloud.operator import AwsOperator
from deploy.errors import RuntimeFailure, UserError
from deploy.local.results import ComponentStatus
from deploy.runtime import env
from deploy.runtime.hub_api import HubAPI, HubAPIError, http_ok
from modules import naming
from render.hub_config import GATEWAY_PATH
from render.schema import Platform

OUTPUTS = "outputs.json"  # as deploy.cloud_ops writes it
ADMIN_TOKEN_KEY = "admin-api-token"
LOG_STREAM_PREFIX = "hub/"  # as deploy.vm.logship names its streams


class AwsRuntime:
    INSTANCE_OUTPUT = "hub_instance_id"  # the output naming the hub instance

    def __init__(self, platform: Platform, build: Path, operator: AwsOperator | None = None) -> None:
        self.platform, self.build = platform, build
        self._outputs: dict | None = None
        self._operator = operator

    @property
    def outputs(self) -> dict:
        if self._outputs is None:
            path = self.build / OUTPUTS
            try:
                self._outputs = json.loads(path.read_text())
            except FileNotFoundError:
                raise UserError(f"no {path}: run `platform apply` first (or give --out, the build "
                                f"directory apply wrote)") from None
            except ValueError as exc:
                raise UserError(f"{path} is not JSON ({exc}): run `platform apply` again") from None
        return self._outputs

    def _output(self, name: str) -> str:
        value = self.outputs.get(name)
        if not value:
            raise UserError(f"{self.build / OUTPUTS} has no {name!r}: run `platform apply` again")
        return value

    @property
    def operator(self) -> AwsOperator:
        if self._operator is None:
            self._operator = self._make_operator()
        return self._operator

    def _make_operator(self):
        return AwsOperator(self.outputs.get("region") or self.platform.cloud.aws.region)

    def secret_name(self, key: str) -> str:
        return naming.secret_name(self.platform.name, key)

    @property
    def hub_url(self) -> str:
        return (os.environ.get(env.CLOUD_HUB_URL) or self._output("hub_url")).rstrip("/")

    def status(self) -> list[ComponentStatus]:
        instance_id = self._output(self.INSTANCE_OUTPUT)
        instance = self.operator.instance(instance_id)
        vm = ComponentStatus(
            name="hub-vm",
            up=instance is not None and instance.state == "running",
            pid=None,
            address=f"{instance_id} ({instance.private_ip})" if instance and instance.private_ip else instance_id,
            version=None,
            detail=instance.state if instance else "not found",
        )
        hub = http_ok(f"{self.hub_url}/hub/api/", timeout=10)
        gateway = http_ok(f"{self.hub_url}{GATEWAY_PATH}/api/health", timeout=10)
        gateway_version = http_ok(f"{self.hub_url}{GATEWAY_PATH}/api/version", timeout=10) if gateway else None
        unreachable = "not answering at the hub URL"
        return [
            vm,
            ComponentStatus("hub", hub is not None, None, self.hub_url, (hub or {}).get("version"),
                            "" if hub is not None else unreachable),
            ComponentStatus("gateway", gateway is not None, None, f"{self.hub_url}{GATEWAY_PATH}",
                            (gateway_version or {}).get("version"), "" if gateway is not None else unreachable),
        ]

    def logs(self, which: str, *, lines: int, follow: bool,
             wait: Callable[[], None] = lambda: time.sleep(1.0)) -> Iterator[str]:
        group = self._output("log_group_name")
        for message in self.operator.log_events(group, LOG_STREAM_PREFIX + which, last=lines, follow=follow,
                                                wait=wait):
            yield message + "\n"

    def token(self, username: str, note: str = "platform token") -> str:
        name = self.secret_name(ADMIN_TOKEN_KEY)
        admin_token = self.operator.secret(name)
        if not admin_token:
            raise RuntimeFailure(f"the secret {name} has no value yet: the hub VM puts it there on its first "
                                 f"boot (see `platform status`)")
        hub = HubAPI(f"{self.hub_url}/hub/api", admin_token)
        try:
            return hub.new_token(username, note)
        except HubAPIError as exc:
            # The hub answers 403 (not 404) for a user it does not have: ask which it is.
            if exc.status in (403, 404) and hub.call("GET", f"/users/{username}")[0] == 404:
                raise RuntimeFailure(f"the hub does not know {username!r} yet: users reach the hub when "
                                     f"the re-applied configuration does (see `platform status`)") from None
            raise
        except OSError as exc:
            raise RuntimeFailure(f"cannot reach the hub at {self.hub_url}: {exc}") from None
