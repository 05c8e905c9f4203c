"""The usage pages: a hub-managed service at /services/usage/ (`python -m deploy.hub.pages.app`).

Visitors log in through the hub (OAuth, `HubOAuthenticated`); the hub grants the
`access:services!service=usage` scope to every user. A user sees their own budget,
clusters and server; a visitor whose token holds unfiltered `read:users` (the hub
grants it to admins only: platform.yaml's admin groups) sees everything. Stopping a
cluster is a POST that passes tornado's XSRF check (JupyterHub's token, bound to the
visitor's session) and the server-side ownership check before the gateway is called.

Settings come from the hub's config (environment): GRATICULE_PAGES (JSON: policy file,
all-users scope, gateway paths and scope), GRATICULE_STATE_DIR / GRATICULE_LEDGER_URL (the ledger);
where to listen and the service token from JupyterHub (JUPYTERHUB_SERVICE_URL, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from sqlalchemy.exc import SQLAlchemyError
from tornado.escape import url_escape
from tornado.httpclient import HTTPClientError
from tornado.ioloop import IOLoop
from tornado.web import Application, HTTPError, RequestHandler, authenticated

from deploy.budgets.policy import Policy
from deploy.hub.pages import views
from deploy.hub.pages.charts import daily_figure, plotly_js
from deploy.hub.pages.hub_api import HubClient
from deploy.ledger import Ledger, resolve_url
from deploy.ledger.engine import make_engine
from deploy.runtime import env
from render.gateway_spec import GatewaySpec


@dataclass
class Site:
    ledger: Ledger
    policy: Policy
    all_users_scope: str
    hub: HubClient
    prefix: str
    hub_prefix: str
    dashboard_prefix: str
    templates: Environment

    def sees_all(self, user_model: dict) -> bool:
        """Authorised by the hub: the visitor's token holds the all-users scope, unfiltered."""
        return self.all_users_scope in user_model.get("scopes", ())


class PageHandler(HubOAuthenticated, RequestHandler):
    def initialize(self, site: Site) -> None:
        self.site = site

    def write_error(self, status_code: int, **kwargs) -> None:
        reason = self._reason
        if "exc_info" in kwargs and isinstance(kwargs["exc_info"][1], HTTPError):
            reason = kwargs["exc_info"][1].log_message or reason
        self.finish(f"{status_code}: {reason}\n")


class UsageHandler(PageHandler):
    @authenticated
    async def get(self) -> None:
        model = self.get_current_user()
        viewer, admin = model["name"], self.site.sees_all(model)
        try:
            data = await asyncio.to_thread(views.page_data, self.site.ledger, self.site.policy, viewer, admin)
        except SQLAlchemyError as exc:  # e.g. no ledger yet: the gateway creates it on its first start
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise HTTPError(503, f"the usage ledger cannot be read yet: {type(exc).__name__}: {detail}") from None
        people = [viewer]
        if admin:
            listed = {u["name"] for b in data["budgets"] for u in b["users"]}
            people = sorted(listed.union(*data["idle_members"].values(), people))
        charts = {
            name: daily_figure(name, series["days"], series["users"])
            for name, series in data["daily"].items()
            if series["users"]
        }
        page = self.site.templates.get_template("usage.html").render(
            data=data,
            viewer=viewer,
            admin=admin,
            charts=charts,
            servers=await self.site.hub.server_profiles(people),
            clusters=[_cluster_row(c, data["now"], self.site.dashboard_prefix) for c in data["clusters"]],
            prefix=self.site.prefix,
            hub_prefix=self.site.hub_prefix,
            xsrf_form_html=self.xsrf_form_html(),
            stopped=self.get_argument("stopped", None),
        )
        self.set_header("Cache-Control", "no-store")
        self.finish(page)


class StopHandler(PageHandler):
    @authenticated
    async def post(self, cluster: str) -> None:
        model = self.get_current_user()
        viewer = model["name"]
        owner = await asyncio.to_thread(views.owner_of, self.site.ledger, cluster)
        if owner is None:
            raise HTTPError(404, f"no running cluster {cluster}")
        if owner != viewer and not self.site.sees_all(model):
            raise HTTPError(403, f"{viewer} may not stop cluster {cluster}")
        try:
            await self.site.hub.stop_cluster(cluster, owner)
        except (HTTPClientError, OSError) as exc:
            raise HTTPError(502, f"the gateway did not stop {cluster}: {exc}") from None
        self.redirect(f"{self.site.prefix}?stopped={url_escape(cluster)}")


class PlotlyHandler(RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/javascript")
        self.set_header("Cache-Control", "max-age=86400")
        self.finish(plotly_js())


def _cluster_row(cluster: views.RunningCluster, now: float, dashboard_prefix: str) -> dict:
    age_s = max(0, int(now - cluster.started_at))
    return {
        "name": cluster.name,
        "user": cluster.user,
        "budget": cluster.budget,
        "profile": cluster.profile,
        "workers": cluster.workers,
        "age": f"{age_s // 3600}h {age_s % 3600 // 60:02d}m" if age_s >= 3600 else f"{age_s // 60}m {age_s % 60:02d}s",
        "started": datetime.fromtimestamp(cluster.started_at, UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cost_usd": cluster.cost_usd,
        "dashboard": f"{dashboard_prefix}/clusters/{cluster.name}/status",
    }


def make_app(environ: dict[str, str]) -> Application:
    settings = json.loads(environ[env.PAGES])
    prefix = environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/usage/")
    data = json.loads(Path(settings["policy_file"]).read_text())
    site = Site(
        # Read only: the gateway owns the ledger's schema (it migrates on start).
        ledger=Ledger(make_engine(resolve_url(environ.get(env.LEDGER_URL), Path(environ[env.STATE_DIR])))),
        policy=Policy.from_gateway_spec(GatewaySpec.from_json(data)),
        all_users_scope=settings["all_users_scope"],
        hub=HubClient(
            environ["JUPYTERHUB_API_URL"],
            environ["JUPYTERHUB_API_TOKEN"],
            settings["gateway_api_url"],
            settings["gateway_access_scope"],
        ),
        prefix=prefix,
        hub_prefix=environ.get("JUPYTERHUB_BASE_URL", "/").rstrip("/") + "/hub/",
        dashboard_prefix=settings["gateway_path"],
        templates=Environment(loader=PackageLoader("deploy.hub.pages"), autoescape=select_autoescape()),
    )
    return Application(
        [
            (prefix, UsageHandler, {"site": site}),
            (url_path_join(prefix, r"clusters/([^/]+)/stop"), StopHandler, {"site": site}),
            (url_path_join(prefix, "static/plotly.min.js"), PlotlyHandler),
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        ],
        cookie_secret=secrets.token_bytes(32),  # sessions go with the process; the hub logs back in
        xsrf_cookies=True,
    )


def main() -> None:
    app = make_app(dict(os.environ))
    address = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
    app.listen(address.port or 80, address.hostname or "127.0.0.1")
    with contextlib.suppress(KeyboardInterrupt):
        IOLoop.current().start()


if __name__ == "__main__":
    main()
