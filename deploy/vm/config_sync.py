"""`python -m deploy.vm.config_sync /etc/graticule/vm.json`: the hub follows `platform apply`.

Every GRATICULE_CONFIG_SYNC_INTERVAL seconds (10 by default) it reads config/current.json
in the artifacts bucket. On a new version it fetches it (checked against its sha256),
swaps `<state>/build` in one rename and restarts only the components whose fingerprint
(command, runtime values, the rendered files they read) changed: a new user restarts the
hub (which keeps its notebook servers: KillMode=process) and not the proxy; running
clusters are untouched (the gateway keeps them across a restart). A new wheelhouse (a new
graticule version) is not installed in place: it is logged, and a replaced hub takes it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from deploy.runtime import env
from deploy.runtime.components import BY_NAME, NAMES
from deploy.runtime.state import write_private
from deploy.vm import boot, config, stores, units
from deploy.vm.settings import RUN_DIR, VmSettings
from deploy.vm.stores import ObjectStore

DEFAULT_INTERVAL = 10.0  # an S3 or GCS GET every 10 s: some 260,000 a month, about $0.10


def sync_once(settings: VmSettings, artifacts: ObjectStore) -> list[str]:
    """Apply the published version if it is new; returns the components restarted."""
    runtime = boot.runtime_of(settings)
    published = config.current(artifacts)
    version = published["version"]
    if version == config.installed_version(runtime.layout):
        return []
    files = config.fetch(artifacts, version)
    envs = boot.environments(runtime, settings, boot.read_secrets(RUN_DIR / "secrets"), boot.outputs_of(files))
    new = boot.fingerprints(runtime, envs, files)
    old = boot.read_fingerprints(runtime)
    changed = [name for name in NAMES if new.get(name) != old.get(name)]
    config.install(runtime.layout, files, version)
    boot.write_fingerprints(runtime, new)
    for name in changed:
        write_private(units.env_file(name), units.env_file_text(envs[name]))  # e.g. a new load balancer address
        boot.systemctl("restart", units.unit_name(name))
    boot.wait_healthy(runtime, tuple(BY_NAME[name] for name in changed if name in ("proxy", "hub")))
    print(f"graticule: configuration {version[:12]} applied; restarted {changed or 'nothing'}", flush=True)
    return changed


def main(argv: list[str]) -> int:
    settings = VmSettings.load(Path(argv[0]) if argv else "/etc/graticule/vm.json")
    interval = float(os.environ.get(env.CONFIG_SYNC_INTERVAL) or DEFAULT_INTERVAL)
    artifacts = stores.object_store(settings)
    while True:
        try:
            sync_once(settings, artifacts)
        except Exception as exc:  # keep following: the next apply may fix it
            print(f"graticule: config sync failed: {type(exc).__name__}: {exc}", flush=True)
        time.sleep(interval)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
