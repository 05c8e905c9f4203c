"""`platform status`, `logs` and `token` for a platform applied on GCP, without SSH: the
AWS runtime's logic (deploy.targets.cloud_runtime) with GCP's calls.

The hub instance's state comes from Compute Engine (`hub_instance` and `hub_zone` in
build/outputs.json), the admin token from Secret Manager, a component's log from Cloud
Logging (the log `graticule-<platform>/hub/<component>` the VM's log shipper writes, read
in the platform's log bucket, `log_bucket` in the outputs), all with the operator's
Application Default Credentials (or a test's stand-ins, deploy.cloud.google_clients).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from deploy.cloud.gcp_log_sink import log_name
from deploy.cloud.operator_gcp import GcpOperator
from deploy.targets.cloud_runtime import LOG_STREAM_PREFIX, AwsRuntime
from modules import naming
from modules.gcp.startup_script import log_name as log_prefix

ALL_LOGS_VIEW = "_AllLogs"  # every log bucket has this view


class GcpRuntime(AwsRuntime):
    INSTANCE_OUTPUT = "hub_instance"

    @property
    def project(self) -> str:
        return self.outputs.get("project") or self.platform.cloud.gcp.project

    def _make_operator(self) -> GcpOperator:
        return GcpOperator(self.project, self._output("hub_zone"))

    def secret_name(self, key: str) -> str:
        return f"projects/{self.project}/secrets/{naming.gcp_secret_id(self.platform.name, key)}"

    def logs(self, which: str, *, lines: int, follow: bool,
             wait: Callable[[], None] = lambda: time.sleep(1.0)) -> Iterator[str]:
        bucket = self.outputs.get("log_bucket")
        source = f"{bucket}/views/{ALL_LOGS_VIEW}" if bucket else f"projects/{self.project}"
        name = log_name(self.project, log_prefix(self.platform.name), LOG_STREAM_PREFIX + which)
        for message in self.operator.log_entries(source, name, last=lines, follow=follow, wait=wait):
            yield message + "\n"
