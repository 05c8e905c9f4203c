"""`platform up` on the local target, end to end (hub side): real JupyterHub, proxy,
dask-gateway server and notebook servers on free loopback ports, a temporary state
directory, and `platform down` checked by PID at the end (also when a test fails).

The tests share one platform and run in file order: they follow a newcomer's session
(up, token, server, login) and an admin's change (re-up), then `down`.
"""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import time

import jupyterhub
import pytest
import requests

from tests.support.local_platform import LocalPlatform, http, local_platform

pytestmark = pytest.mark.slow

CONFIG = """\
apiVersion: graticule/v1
name: uptest
target: local
hub:
  auth: {provider: local}
  default_profile: small
  idle_timeout: 1h
groups:
  admins: {admin: true}
  ocean: {profiles: [small, large], environments: [default]}
  students: {profiles: [small], environments: [default]}
users:
  - {name: alice, groups: [admins, ocean]}
  - {name: bob, groups: [students]}
  - {name: carol, groups: [ocean]}
profiles:
  small: {cpu: 1, memory: 1GiB}
  large: {cpu: 2, memory: 2GiB}
dask:
  default_profile: small
  max_workers: 2
environments:
  default: {python: "3.11", packages: ["dask[distributed]==2026.8.0"]}
"""

# The admin's change: dave joins, carol leaves.
CHANGED = CONFIG.replace(
    "  - {name: carol, groups: [ocean]}\n", "  - {name: dave, groups: [students]}\n"
)


@pytest.fixture(scope="module")
def lp(tmp_path_factory) -> LocalPlatform:
    with local_platform(CONFIG, tmp_path_factory.mktemp("local-up")) as handle:
        yield handle


def login(lp: LocalPlatform, username: str, password: str) -> requests.Response:
    """The hub's login form, as a browser submits it (with the _xsrf token)."""
    session = requests.Session()
    page = session.get(f"{lp.hub_url}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    data = {"username": username, "password": password, "_xsrf": xsrf.group(1) if xsrf else ""}
    return session.post(f"{lp.hub_url}/hub/login", data=data, allow_redirects=False, timeout=60)


def logged_in(response: requests.Response) -> bool:
    return response.status_code == 302 and any(c.name.startswith("jupyterhub-") for c in response.cookies)


def test_up_prints_the_urls_and_how_each_user_logs_in(lp):
    out = lp.outputs[0]
    assert lp.hub_url in out
    assert lp.gateway_url in out
    for name in ("alice", "bob", "carol"):
        assert re.search(rf"^\s+{name}\b", out, re.MULTILINE), out
    assert "platform users passwd" in out


def test_status_reports_every_component_up(lp):
    report = lp.status()
    assert report["up"] is True
    components = {c["name"]: c for c in report["components"]}
    assert set(components) == {"proxy", "hub", "gateway", "jobs"}
    assert components["hub"]["version"] == jupyterhub.__version__
    assert components["hub"]["address"] == lp.hub_url
    assert components["gateway"]["address"] == lp.gateway_url
    for component in components.values():
        assert component["pid"] in lp.remember_pids()


def test_state_is_private_and_the_build_holds_no_secret(lp):
    assert stat.S_IMODE(lp.state_dir.stat().st_mode) == 0o700
    secrets = sorted((lp.state_dir / "secrets").iterdir())
    assert {path.name for path in secrets} >= {"cookie_secret", "gateway_api_token", "admin_api_token"}
    build = [path for path in (lp.state_dir / "build").rglob("*") if path.is_file()]
    assert any(path.name == "jupyterhub_config.py" for path in build)
    for secret in secrets:
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        value = secret.read_text().strip()
        for path in build:
            assert value not in path.read_text(errors="replace"), f"{secret.name} leaked into {path}"


def test_alice_gets_a_token_and_starts_her_notebook_server(lp):
    token = lp.token("alice")
    assert http("GET", f"{lp.hub_api_url}/user", token).json()["name"] == "alice"
    server = lp.start_server("alice", token, profile="small")
    assert server["user_options"] == {"profile": "small"}
    assert http("GET", f"{lp.hub_url}/user/alice/api/status", token).status == 200
    # The chosen profile sizes the server; it runs in alice's own working directory.
    pid = lp.server_pid("alice")
    assert pid
    import psutil

    proc = psutil.Process(pid)
    env = proc.environ()
    assert env["GRATICULE_PROFILE"] == "small"
    assert env["MEM_LIMIT"] == str(2**30)
    assert float(env["CPU_LIMIT"]) == 1.0
    assert env["DASK_GATEWAY__ADDRESS"] == lp.gateway_url
    assert proc.cwd() == str(lp.state_dir / "users" / "alice")
    # In her notebooks, dask_gateway.Gateway() needs no arguments: the server's
    # environment names the gateway and carries a hub token the gateway accepts.
    probe = "from dask_gateway import Gateway; g = Gateway(); print(g.address, len(g.list_clusters()))"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [lp.gateway_url, "0"]


def test_a_profile_outside_the_users_groups_is_refused(lp):
    token = lp.token("bob")
    answer = lp.hub_api("POST", "/users/bob/server", token, {"profile": "large"})
    deadline = time.monotonic() + 30
    while answer.status in (201, 202) and time.monotonic() < deadline:
        server = lp.hub_api("GET", "/users/bob", token).json()["servers"].get("")
        if not server or not server.get("pending"):
            break
        time.sleep(0.5)
    user = lp.hub_api("GET", "/users/bob", token).json()
    assert not user["servers"].get("", {}).get("ready"), "bob got a server with a profile he is not granted"
    assert lp.server_pid("bob") is None
    assert "profile 'large' is not available to bob" in lp.log_tail("hub", 400)


def test_the_first_login_sets_the_password_and_then_only_it_works(lp):
    assert logged_in(login(lp, "carol", "correct horse battery"))
    assert not logged_in(login(lp, "carol", "wrong password!"))
    assert logged_in(login(lp, "carol", "correct horse battery"))
    store = lp.state_dir / "passwords.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert "correct horse" not in store.read_text()


def test_a_name_not_in_platform_yaml_can_neither_log_in_nor_get_a_token(lp):
    assert not logged_in(login(lp, "mallory", "correct horse battery"))
    assert not logged_in(login(lp, "mallory", "correct horse battery"))  # no password was stored
    assert "mallory" not in (lp.state_dir / "passwords.json").read_text()
    refused = lp.platform("token", "mallory", "--file", str(lp.config_path), "--state", str(lp.state_dir), check=False)
    assert refused.returncode == 2
    assert "mallory" in refused.stderr
    assert lp.hub_api("GET", "/users/mallory", lp.token("alice")).status == 404


def test_an_invalid_platform_yaml_is_refused_and_the_platform_keeps_running(lp, tmp_path):
    broken = tmp_path / "platform.yaml"
    broken.write_text(CONFIG.replace("cpu: 1,", "cpu: one,"))
    done = lp.platform("up", str(broken), "--state", str(lp.state_dir), check=False)
    assert done.returncode == 2
    assert re.search(r"platform\.yaml:\d+:\d+: profiles\.small\.cpu", done.stderr), done.stderr
    assert "Traceback" not in done.stderr
    assert lp.status()["up"] is True


def test_re_up_with_a_changed_platform_yaml_keeps_alices_server(lp):
    alice = lp.token("alice")
    carol = lp.token("carol")
    server_pid = lp.server_pid("alice")
    done = lp.up(CHANGED)
    assert re.search(r"restarted: [^;]*hub", done.stdout), done.stdout
    assert "proxy" not in re.search(r"restarted: ([^;)]*)", done.stdout).group(1)
    # dave is in: he gets a token and can log in; carol is out: neither works any more.
    dave = lp.token("dave")
    assert http("GET", f"{lp.hub_api_url}/user", dave).json()["name"] == "dave"
    assert logged_in(login(lp, "dave", "a new password"))
    assert not logged_in(login(lp, "carol", "correct horse battery"))
    assert http("GET", f"{lp.hub_api_url}/user", carol).status == 403
    refused = lp.platform("token", "carol", "--file", str(lp.config_path), "--state", str(lp.state_dir), check=False)
    assert refused.returncode == 2
    # alice's notebook server was not touched: same process, still answering.
    assert lp.server_pid("alice") == server_pid
    assert http("GET", f"{lp.hub_url}/user/alice/api/status", alice).status == 200
    assert lp.hub_api("GET", "/users/alice", alice).json()["servers"][""]["ready"] is True


def test_re_up_without_a_change_restarts_nothing(lp):
    done = lp.up()
    assert "unchanged: proxy, hub, gateway" in done.stdout, done.stdout


def test_re_up_repairs_a_crashed_component_and_keeps_alices_server(lp):
    import psutil

    alice = lp.token("alice")
    server_pid = lp.server_pid("alice")
    proxy = {c["name"]: c for c in lp.status()["components"]}["proxy"]
    psutil.Process(proxy["pid"]).kill()  # a crash: the public port goes away
    psutil.Process(proxy["pid"]).wait(10) if psutil.pid_exists(proxy["pid"]) else None
    report = lp.status()
    assert report["up"] is False
    states = {c["name"]: c["up"] for c in report["components"]}
    assert states == {"proxy": False, "hub": True, "gateway": True, "jobs": True}
    done = lp.up()
    assert "started: proxy" in done.stdout and "restarted: hub" in done.stdout, done.stdout
    assert lp.status()["up"] is True
    # The new proxy got the route to alice's (untouched) server back from the hub.
    assert lp.server_pid("alice") == server_pid
    assert http("GET", f"{lp.hub_url}/user/alice/api/status", alice).status == 200


def test_down_leaves_no_process_behind(lp):
    running = lp.remember_pids()
    assert lp.server_pid("alice") in running
    lp.down()
    assert lp.survivors() == []
    report = lp.status()
    assert report["up"] is False
    assert all(component["pid"] is None for component in report["components"])
    assert lp.platform("status", "--state", str(lp.state_dir), check=False).returncode == 1
