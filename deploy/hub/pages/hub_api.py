"""The usage pages' calls to the hub's REST API and to dask-gateway's, with the
service's own hub token (JUPYTERHUB_API_TOKEN, scopes from the `usage-pages` role)."""

from __future__ import annotations

import json
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

STOP_TOKEN_SECONDS = 120  # the owner's token lives just long enough to stop one cluster


class HubClient:
    def __init__(self, hub_api_url: str, token: str, gateway_api_url: str, gateway_access_scope: str) -> None:
        self.hub_api_url = hub_api_url.rstrip("/")
        self.token = token
        self.gateway_api_url = gateway_api_url.rstrip("/")
        self.gateway_access_scope = gateway_access_scope
        self.http = AsyncHTTPClient()

    async def _call(
        self, method: str, url: str, token: str, body: dict | None = None, scheme: str = "token"
    ) -> dict | None:
        response = await self.http.fetch(
            url,
            method=method,
            headers={"Authorization": f"{scheme} {token}", "Content-Type": "application/json"},
            body=json.dumps(body) if body is not None else None,
            allow_nonstandard_methods=method == "DELETE",
        )
        return json.loads(response.body) if response.body else None

    async def server_profiles(self, names: list[str]) -> dict[str, str | None]:
        """Each user's running notebook server's profile (None: no server)."""
        profiles: dict[str, str | None] = {}
        for name in names:
            try:
                model = await self._call("GET", f"{self.hub_api_url}/users/{quote(name)}", self.token)
            except (HTTPClientError, OSError):  # the page still shows the money without it
                profiles[name] = None
                continue
            server = (model or {}).get("servers", {}).get("")
            options = (server or {}).get("user_options") or {}
            profiles[name] = (options.get("profile") or "default") if server else None
        return profiles

    async def stop_cluster(self, cluster: str, owner: str) -> None:
        """Stop `owner`'s cluster through the gateway's API, which checks ownership again:
        the service asks the hub for a short-lived token of the owner, limited to the
        gateway, uses it once and revokes it."""
        issued = await self._call(
            "POST",
            f"{self.hub_api_url}/users/{quote(owner)}/tokens",
            self.token,
            {
                "note": f"usage page: stop cluster {cluster}",
                "expires_in": STOP_TOKEN_SECONDS,
                "scopes": [self.gateway_access_scope],
            },
        )
        try:
            # dask-gateway's JupyterHubAuthenticator reads `Authorization: jupyterhub TOKEN`.
            url = f"{self.gateway_api_url}/api/v1/clusters/{quote(cluster)}"
            await self._call("DELETE", url, issued["token"], scheme="jupyterhub")
        finally:
            await self._call("DELETE", f"{self.hub_api_url}/users/{quote(owner)}/tokens/{issued['id']}", self.token)
