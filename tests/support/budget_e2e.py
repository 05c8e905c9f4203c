"""What the cloud budget e2e modules share (tests/test_{aws,gcp}_budget_e2e.py and the notebook
modules' budget checks), on the session's `aws_platform` or `gcp_platform`: a user's
dask-gateway client through the load balancer, what JupyterHub answers a refused spawn, the
gateway's log on the hub VM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dask_gateway.auth import JupyterHubAuth

from tests.support.cloud_e2e import eventually, gateway_up, hub_box
from tests.support.gateway_client import Gateway
from tests.support.hub_e2e import Session

if TYPE_CHECKING:
    from tests.support.aws_platform import AwsPlatform
    from tests.support.gcp_platform import GcpPlatform


def user_gateway(platform: AwsPlatform | GcpPlatform, user: str) -> Gateway:
    """`user`'s dask-gateway client, as on a laptop: logged in through the load balancer, a
    JupyterHub token, the gateway's API at 443 and the schedulers' TLS at the Dask port."""
    eventually(lambda: gateway_up(platform), 300,
               lambda: "the gateway did not answer through the load balancer\n"
               + platform.diagnose(platform.hub_instance()))
    session = Session(platform.front, user)
    assert session.login().status_code == 302
    return Gateway(address=f"{platform.front}/services/dask-gateway", proxy_address=platform.scheduler,
                   auth=JupyterHubAuth(api_token=session.new_token()))


def spawn_answer(session: Session, options: dict) -> str:
    """What JupyterHub says of a spawn that fails at once: the start request's answer and the
    progress events its spawn page shows."""
    started = session.api("POST", f"/users/{session.user}/server", options)
    progress = session.api("GET", f"/users/{session.user}/server/progress")
    return started.text + progress.text


def gateway_log(platform: AwsPlatform | GcpPlatform) -> str:
    """The gateway's log on the hub VM, as it is now."""
    log = hub_box(platform).root / "var/log/graticule/gateway.log"
    return log.read_text(errors="replace") if log.exists() else ""
