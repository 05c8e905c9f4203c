"""One simulated instance: an overlay of the cached root, its own network, mount and PID namespaces.

The process tree is `ip netns exec NS unshare --mount --pid --fork ... chroot MERGED
/sbin/sim-init`: PID 1 of the instance's PID namespace is sim-init, so killing it ends
every process of the instance at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.support.procs import kill_tree

from . import netns

GUEST = Path(__file__).parent / "guest"
IMDS_ADDRESS = "169.254.169.254"

# Run inside the new mount namespace before the chroot; these mounts vanish with it.
_ENTER = """set -e
root="$1"
hostname "$2"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
exec chroot "$root" /sbin/sim-init
"""


@dataclass
class Sandbox:
    instance_id: str
    ip: str
    cidr: str
    ns: str
    directory: Path
    proc: subprocess.Popen | None = None
    gateway: str = ""
    overlay: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.directory / "merged"

    @property
    def hostname(self) -> str:
        return f"ip-{self.ip.replace('.', '-')}"

    @property
    def console_log(self) -> Path:
        """User data's and sim-init's stdout/stderr (cloud-init-output.log on a VM)."""
        return self.directory / "console.log"

    def prepare(self, rootfs: Path) -> None:
        """The instance's root: an overlay on the shared cached root (a copy if overlay fails)."""
        for part in ("upper", "work", "merged"):
            (self.directory / part).mkdir(parents=True, exist_ok=True)
        options = f"lowerdir={rootfs},upperdir={self.directory / 'upper'},workdir={self.directory / 'work'}"
        mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(self.root)],
                                 capture_output=True)
        self.overlay = mounted.returncode == 0
        if not self.overlay:
            shutil.rmtree(self.root)
            shutil.copytree(rootfs, self.root, symlinks=True)
        for name, target in (("sim-init", "sbin/sim-init"), ("sim-reap", "sbin/sim-reap"),
                             ("systemctl", "usr/local/bin/systemctl")):
            destination = self.root / target
            shutil.copyfile(GUEST / name, destination)
            destination.chmod(0o755)
        with contextlib.suppress(FileExistsError):
            (self.root / "usr/local/bin/simctl").symlink_to("systemctl")

    def write_guest_config(self, user_data: bytes, environment: dict[str, str]) -> None:
        hostname = self.hostname
        cloud = self.root / "var/lib/cloud/instance"
        cloud.mkdir(parents=True, exist_ok=True)
        (cloud / "user-data").write_bytes(user_data)
        (self.root / "etc/sim").mkdir(parents=True, exist_ok=True)
        lines = "".join(f"{key}={value}\n" for key, value in sorted(environment.items()))
        (self.root / "etc/sim/environment").write_text(lines)
        (self.root / "etc/hostname").write_text(f"{hostname}\n")
        hosts = f"127.0.0.1 localhost\n{self.ip} {hostname}\n"
        (self.root / "etc/hosts").write_text(hosts)
        aws = self.root / "root/.aws"
        aws.mkdir(parents=True, exist_ok=True)
        region = environment.get("AWS_DEFAULT_REGION", "us-east-1")
        (aws / "config").write_text(f"[default]\nregion = {region}\n"
                                    f"endpoint_url = {environment.get('AWS_ENDPOINT_URL', '')}\n")

    def start(self) -> None:
        with open(self.console_log, "ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--pid", "--uts", "--ipc", "--fork",
                 "--propagation", "private", "sh", "-c", _ENTER, "sim-enter", str(self.root), self.hostname],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def init_pid(self, timeout: float = 10.0) -> int:
        """Host PID of the instance's PID 1 (sim-init)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in psutil.Process(self.proc.pid).children():
                    if Path(f"/proc/{child.pid}/root").resolve() == self.root.resolve():
                        return child.pid
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.instance_id} exited: {self.console_log.read_text()[-2000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.instance_id}: sim-init did not start")

    def pids(self) -> list[int]:
        """Host PIDs of every process of the instance, the launcher included."""
        if self.proc is None:
            return []
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent.pid, *(p.pid for p in parent.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def exec(self, args: list[str], timeout: float = 60.0, **kwargs) -> subprocess.CompletedProcess:
        """Run a command inside the instance (its root, network, mounts and PIDs), as root."""
        pid = self.init_pid()
        command = ["nsenter", "-t", str(pid), "-m", "-n", "-p", "-r", "-w", "--", *args]
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
        # What sim-init gives user data: the endpoint and region.
        for line in (self.root / "etc/sim/environment").read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, **kwargs)

    def stop(self) -> None:
        """Kill every process of the instance, unmount its root, remove its namespace."""
        try:
            if self.proc is not None:
                kill_tree(self.proc.pid, timeout=5)
                self.proc.wait(timeout=30)
        finally:  # a launcher slow to go (a loaded machine) still leaves no mount or namespace behind
            self._unmount_and_remove()

    def _unmount_and_remove(self) -> None:
        if self.overlay:
            for attempt in range(20):
                result = subprocess.run(["umount", str(self.root)], capture_output=True)
                if result.returncode == 0 or not os.path.ismount(self.root):
                    break
                time.sleep(0.1 * (attempt + 1))
            else:
                subprocess.run(["umount", "-l", str(self.root)], capture_output=True)
        netns.delete_ns(self.ns)
        for part in ("upper", "work", "merged"):
            shutil.rmtree(self.directory / part, ignore_errors=True)
