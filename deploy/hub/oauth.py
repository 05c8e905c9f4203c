"""OAuth authenticators for the cloud targets, with platform.yaml as the list of people.

Stock OAuthenticator lets in anyone who is in `allowed_users` *or* passes the provider's
check (e.g. membership of `allowed_organizations`). A platform wants both: a person listed
in platform.yaml (who has groups, profiles and a budget) *and* vouched for by the provider.
"""

from __future__ import annotations

from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from oauthenticator.oauth2 import OAuthLoginHandler
from traitlets import Unicode, default


class PlatformGitHubOAuthenticator(GitHubOAuthenticator):
    async def check_allowed(self, username: str, auth_model: dict) -> bool:
        if username not in self.allowed_users:
            self.log.warning("login refused for %r: not a user in platform.yaml", username)
            return False
        if not self.allowed_organizations:
            return True
        token = auth_model["auth_state"]["token_response"]
        for org in self.allowed_organizations:
            if await self._check_membership_allowed_organizations(
                org, username, token["access_token"], token["token_type"]
            ):
                return True
        self.log.warning("login refused for %s: not in %s", username, sorted(self.allowed_organizations))
        return False


class DiscoveringLoginHandler(OAuthLoginHandler):
    """The login redirect, after the issuer's endpoints are known (fetched without blocking the hub)."""

    async def get(self) -> None:
        await self.authenticator.discover()
        super().get()


class PlatformOIDCAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator whose endpoints come from the issuer's discovery document.

    The document is fetched at the first login with tornado's AsyncHTTPClient (a blocking call
    would stall every request the hub serves for up to the timeout), then kept.
    """

    issuer = Unicode(config=True, help="The OpenID Connect issuer URL (https://...).")
    login_handler = DiscoveringLoginHandler
    _ENDPOINTS = {
        "authorize_url": "authorization_endpoint",
        "token_url": "token_endpoint",
        "userdata_url": "userinfo_endpoint",
    }

    async def discover(self) -> None:
        """Fill the endpoints not configured explicitly from the issuer's OpenID configuration."""
        if all(getattr(self, trait) for trait in self._ENDPOINTS):
            return
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self.httpfetch(url, label="fetching the OpenID configuration", request_timeout=10)
        for trait, key in self._ENDPOINTS.items():
            if not getattr(self, trait):
                setattr(self, trait, document[key])

    async def authenticate(self, handler, data=None, **kwargs):
        await self.discover()
        return await super().authenticate(handler, data, **kwargs)

    async def refresh_user(self, user, handler=None, **kwargs):
        await self.discover()
        return await super().refresh_user(user, handler, **kwargs)

    @default("scope")
    def _scope(self) -> list[str]:
        return ["openid", "profile", "email"]

    async def check_allowed(self, username: str, auth_model: dict) -> bool:
        # The issuer vouched for the identity; platform.yaml decides who is a user.
        return username in self.allowed_users or username in self.admin_users
