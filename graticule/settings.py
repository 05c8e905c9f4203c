"""Where the hub and gateway are, and which token to use.

Resolution order, first found wins, per value:
1. `GRATICULE_*` environment variables (GRATICULE_HUB_URL, GRATICULE_TOKEN,
   GRATICULE_GATEWAY_URL, GRATICULE_GATEWAY_SCHEDULER_URL);
2. inside a hub notebook: JUPYTERHUB_API_TOKEN (set by JupyterHub) and the gateway
   address the spawner sets in GRATICULE_GATEWAY_URL;
3. the file written by `graticule.login()` in the user's config directory (0600);
4. the gateway behind the hub's proxy, `<hub>/services/dask-gateway`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from graticule import _env
from graticule.errors import AuthError

SERVICE_PATH = "/services/dask-gateway"
DISCOVERY_PATH = "/services/platform/discovery.json"  # public; read by login()
CONFIG_NAME = "credentials.json"


@dataclass(frozen=True)
class Settings:
    token: str
    gateway_url: str
    proxy_address: str | None = None
    hub_url: str | None = None
    user: str | None = None


def config_dir() -> Path:
    """The per-user config directory (GRATICULE_CONFIG_DIR overrides it)."""
    explicit = os.environ.get(_env.CONFIG_DIR)
    if explicit:
        return Path(explicit)
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming") / "graticule"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "graticule"
    return Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "graticule"


def config_path() -> Path:
    return config_dir() / CONFIG_NAME


def read_saved() -> dict:
    try:
        return json.loads(config_path().read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise AuthError(f"cannot read {config_path()}: {exc}; run graticule.login() again") from None


def save(values: Settings) -> Path:
    """Write the settings 0600 (directory 0700), atomically."""
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        directory.chmod(0o700)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".credentials-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(values), handle, indent=2, sort_keys=True)
        os.replace(tmp, directory / CONFIG_NAME)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return directory / CONFIG_NAME


def hub_root(url: str) -> str:
    """'http://h:8000/hub/' -> 'http://h:8000' (the hub's public URL, without /hub)."""
    url = url.rstrip("/")
    return url[: -len("/hub")] if url.endswith("/hub") else url


def resolve() -> Settings:
    env = os.environ
    saved = read_saved()
    hub_url = env.get(_env.HUB_URL) or saved.get("hub_url")
    token = env.get(_env.TOKEN) or env.get("JUPYTERHUB_API_TOKEN") or saved.get("token")
    gateway = env.get(_env.GATEWAY_URL) or saved.get("gateway_url")
    if not gateway and hub_url:
        gateway = hub_root(hub_url) + SERVICE_PATH
    proxy = env.get(_env.GATEWAY_SCHEDULER_URL) or saved.get("proxy_address")
    if not token:
        raise AuthError(
            "no credentials: run graticule.login('https://your-hub') once on this machine "
            "(inside a hub notebook they are set for you)"
        )
    if not gateway:
        raise AuthError(f"no gateway address: run graticule.login(HUB_URL) or set {_env.GATEWAY_URL}")
    return Settings(
        token=token,
        gateway_url=gateway.rstrip("/"),
        proxy_address=proxy or None,
        hub_url=hub_url,
        user=env.get("JUPYTERHUB_USER") or saved.get("user"),
    )
