"""OAuth authenticators for the cloud targets, with platform.yaml as the list of people.

Stock OAuthenticator lets in anyone who is in `allowed_users` *or* passes the provider's
check (e.g. membership of `allowed_organizations`). A platform wants both: a person listed
in platform.yaml (who has groups, profiles and a budget) *and* vouched for by the provider.
"""

from __future__ import annotations

import json
import urllib.request
from functools import cache

from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
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


@cache
def _discovery(issuer: str) -> dict:
    """The issuer's OpenID configuration (fetched at first login, not at render time)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


class PlatformOIDCAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator whose endpoints come from the issuer's discovery document."""

    issuer = Unicode(config=True, help="The OpenID Connect issuer URL (https://...).")

    @default("authorize_url")
    def _authorize_url(self) -> str:
        return _discovery(self.issuer)["authorization_endpoint"]

    @default("token_url")
    def _token_url(self) -> str:
        return _discovery(self.issuer)["token_endpoint"]

    @default("userdata_url")
    def _userdata_url(self) -> str:
        return _discovery(self.issuer)["userinfo_endpoint"]

    @default("scope")
    def _scope(self) -> list[str]:
        return ["openid", "profile", "email"]

    async def check_allowed(self, username: str, auth_model: dict) -> bool:
        # The issuer vouched for the identity; platform.yaml decides who is a user.
        return username in self.allowed_users or username in self.admin_users
