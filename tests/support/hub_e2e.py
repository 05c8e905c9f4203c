"""What tests/test_aws_hub_e2e.py drives: the `platform` CLI against moto, the hub through the
simulated load balancer, and logins with the local password authenticator.

A `Session` logs a user in through the front door as a browser does (the login form with
JupyterHub's XSRF cookie; the first login sets the password), then calls the hub's REST
API with the session cookie and the XSRF header.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import REPO as CHECKOUT
from tests.support.bootstrap import config

PASSWORDS = {"alice": "alice-Secret-1", "dave": "dave-Secret-1"}


def platform_yaml(egress: str) -> str:
    """The repository's platform.yaml on aws, one zone, `egress`, local logins (the test has
    no OAuth provider), alice's group granted the small profile only."""
    text = config("aws")
    github = r"  auth:\n    provider: github[^\n]*\n    github:\n(      [^\n]*\n)+"
    text = re.sub(github, "  auth:\n    provider: local\n", text)
    return text.replace("    egress: nat ", f"    egress: {egress} ")


def with_user(text: str, name: str, group: str) -> str:
    return text.replace("\nusers:\n", f"\nusers:\n  - name: {name}\n    groups: [{group}]\n", 1)


def cli(cwd: Path, env: dict[str, str], *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    inherited = os.environ.get("PYTHONPATH")
    environment = {**os.environ, **env,
                   "PYTHONPATH": os.pathsep.join([str(CHECKOUT), *([inherited] if inherited else [])])}
    proc = subprocess.run([sys.executable, "-m", "deploy.cli.main", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"platform {' '.join(args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def wait_healthy(front: str, timeout: float, diagnose) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{front}/hub/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(2)
    raise AssertionError(f"the hub did not answer through the load balancer within {timeout:.0f} s\n{diagnose()}")


class Session:
    def __init__(self, front: str, user: str) -> None:
        self.front, self.user = front, user
        self.http = requests.Session()

    @property
    def xsrf(self) -> str:
        return self.http.cookies.get("_xsrf", "")

    def login(self, password: str | None = None) -> requests.Response:
        """The login form's answer: 302 logged in, 403 refused (anything else: not answering yet)."""
        page = self.http.get(f"{self.front}/hub/login", timeout=30)
        if page.status_code != 200:
            return page
        answer = self.http.post(f"{self.front}/hub/login?next=%2Fhub%2Fhome", timeout=60,
                                data={"username": self.user, "password": password or PASSWORDS[self.user],
                                      "_xsrf": self.xsrf}, allow_redirects=False)
        return answer

    def api(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        return self.http.request(method, f"{self.front}/hub/api{path}", json=body, timeout=60,
                                 headers={"X-XSRFToken": self.xsrf, "Referer": f"{self.front}/hub/home"})

    def start_server(self, profile: str = "small", timeout: float = 300) -> dict:
        answer = self.api("POST", f"/users/{self.user}/server", {"profile": profile})
        assert answer.status_code in (201, 202), answer.text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.api("GET", f"/users/{self.user}").json().get("servers", {}).get("", {})
            if server.get("ready"):
                return server
            time.sleep(2)
        raise AssertionError(f"{self.user}'s server was not ready within {timeout:.0f} s")

    def server_status(self, token: str) -> dict:
        """The notebook server's own status, through the load balancer and the hub's proxy
        (with an API token of the user: the session cookie is the hub's, not the server's)."""
        answer = requests.get(f"{self.front}/user/{self.user}/api/status", timeout=30,
                              headers={"Authorization": f"token {token}"})
        answer.raise_for_status()
        return answer.json()

    def new_token(self) -> str:
        answer = self.api("POST", f"/users/{self.user}/tokens", {"note": "e2e", "expires_in": 86400})
        assert answer.status_code in (200, 201), answer.text
        return answer.json()["token"]


def token_user(front: str, token: str) -> str | None:
    answer = requests.get(f"{front}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30)
    return answer.json().get("name") if answer.status_code == 200 else None


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
