"""After an apply, until the hub runs what it published: shared by the cloud e2e harnesses
(tests/support/aws_platform.py, tests/support/gcp_platform.py).

`platform apply` publishes a configuration version to the artifacts bucket; the hub's config
sync (deploy/vm/config_sync.py, the same unit on every cloud) installs it, restarts the
components whose files changed and then logs "configuration <v12> applied". A test that
starts a cluster right after a re-apply must not meet a gateway in mid-restart, so `apply`
waits for that line and for the gateway to answer through the front door.

Only the log written since the apply counts: a version is the hash of its files, so
re-applying the original platform.yaml publishes a version the log already names from the
hub's first boot (that old line once let a restart hit the next test).
"""

from __future__ import annotations

import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from tests.support.cloud_e2e import gateway_up

INSTALLED_VERSION = "/var/lib/graticule/build/VERSION"
CONFIG_SYNC_LOG = "/var/log/graticule/config-sync.log"


class SettlingApply(ABC):
    """Mixed into a harness: it says how to apply, what was published and how to read a file on
    the hub; `apply` then settles."""

    root: Path  # the admin's checkout: platform.yaml
    front: str  # the hub through the load balancer
    text: str  # platform.yaml as last applied

    @abstractmethod
    def _apply(self) -> subprocess.CompletedProcess[str]:
        """Apply the platform.yaml in the admin's checkout (publishes a configuration version)."""

    @abstractmethod
    def published_version(self) -> str:
        """The version in the artifacts bucket's config/current.json."""

    @abstractmethod
    def hub_file(self, path: str) -> str | None:
        """A file on the hub VM (None: no such file, or no hub VM)."""

    @abstractmethod
    def diagnose(self, instance: str) -> str: ...

    @abstractmethod
    def hub_instance(self) -> str: ...

    def apply(self, text: str | None = None, *, settle: bool = True) -> subprocess.CompletedProcess[str]:
        """Apply `text` (or platform.yaml as it is); with `settle`, also until the hub runs what
        it published (see `settle`)."""
        if text is not None:
            (self.root / "platform.yaml").write_text(text)
            self.text = text
        before = (self.installed_version(), len(self.config_sync_log())) if settle else None
        applied = self._apply()
        if before is not None:
            self.settle(*before)
        return applied

    def installed_version(self) -> str | None:
        """The configuration version the hub VM runs (its config sync's VERSION file)."""
        found = self.hub_file(INSTALLED_VERSION)
        return found.strip() if found else None

    def config_sync_log(self) -> str:
        return self.hub_file(CONFIG_SYNC_LOG) or ""

    def settle(self, before: str | None, log_offset: int = 0, timeout: float = 300.0) -> None:
        """Until the hub's config sync installed the published version (unless it ran it
        already, `before`), restarted what changed (its log line, after `log_offset`, comes
        after the restarts) and the gateway answers again."""
        version = self.published_version()
        if version == before:
            return  # nothing new for the hub
        line = f"configuration {version[:12]} applied"
        deadline = time.monotonic() + timeout
        self._wait(lambda: line in self.config_sync_log()[log_offset:], deadline,
                   f"the hub did not apply {version[:12]} within {timeout:.0f} s")
        self._wait(lambda: gateway_up(self), deadline, "the gateway did not answer after the re-apply")

    def settle_after_replacement(self, boot_console: Callable[[], str], timeout: float = 300.0) -> None:
        """After an apply that replaced the hub VM: Terraform boots the new hub before the apply
        publishes, so the hub either booted with the published version (its console says
        "configuration <v12> installed") or its config sync installs it afterwards and restarts
        what changed ("... applied"). Until one of the two, and the gateway answers."""
        version = self.published_version()[:12]
        deadline = time.monotonic() + timeout
        self._wait(lambda: (f"configuration {version} installed" in boot_console()
                            or f"configuration {version} applied" in self.config_sync_log()), deadline,
                   f"the replaced hub did not run {version} within {timeout:.0f} s")
        self._wait(lambda: gateway_up(self), deadline, "the gateway did not answer on the replaced hub")

    def _wait(self, done: Callable[[], bool], deadline: float, failure: str) -> None:
        """Poll `done` every 2 s until the deadline; past it, fail with the hub's logs."""
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"{failure}\n" + self.diagnose(self.hub_instance()))
            time.sleep(2)
