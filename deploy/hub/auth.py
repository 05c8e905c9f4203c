"""The local target's authenticator: platform.yaml users with passwords in the state dir.

Users are not Unix accounts here. A user's first login sets their password (or an admin
sets it with `platform users passwd NAME`); after that the stored argon2 hash decides.
Names outside platform.yaml (JupyterHub's `allowed_users`) are refused before any
password is looked at or set.
"""

from __future__ import annotations

import os
from pathlib import Path

from jupyterhub.auth import Authenticator
from traitlets import Unicode, default

from deploy.hub import passwords
from deploy.runtime import env


class LocalPasswordAuthenticator(Authenticator):
    state_dir = Unicode(config=True, help="The platform's state directory (holds passwords.json).")

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return os.environ[env.STATE_DIR]

    async def authenticate(self, handler, data: dict) -> str | None:
        username = self.normalize_username(data.get("username", ""))
        password = data.get("password", "")
        state = Path(self.state_dir)
        if username not in self.allowed_users and username not in self.admin_users:
            self.log.warning("login refused for %r: not a user in platform.yaml", username)
            return None
        if not passwords.has_password(state, username):
            if len(password) < passwords.MIN_LENGTH:
                self.log.warning("first login of %s refused: password shorter than %d", username, passwords.MIN_LENGTH)
                return None
            passwords.set_password(state, username, password)
            self.log.info("password of %s set at first login", username)
            return username
        if passwords.verify_password(state, username, password):
            return username
        self.log.warning("login of %s refused: wrong password", username)
        return None
