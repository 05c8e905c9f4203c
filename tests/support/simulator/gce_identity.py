"""Instance identity tokens as Compute Engine's metadata server issues them, for the simulator.

`instance/service-accounts/default/identity?audience=AUD&format=full` answers a JWT signed
RS256 by Google; `format=full` adds the `google.compute_engine` claims (instance id and
name, project, zone). Here the signer is a test key made once per simulator (an RSA key and
a self-signed certificate), and its certificate is served, as Google serves its own at
https://www.googleapis.com/oauth2/v1/certs, as `{"<kid>": "<PEM certificate>"}` by a
loopback HTTP server (`IdentityIssuer.serve`): the simulator names it `certs` in the
instances' endpoints file, so the hub's broker verifies with google-auth as it would
against Google.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from tests.support.gcp import PROJECT_NUMBER
from tests.support.http_server import BurstHTTPServer

ISSUER = "https://accounts.google.com"
LIFETIME = 3600  # seconds, as Google's


class IdentityIssuer:
    def __init__(self, *, max_age: int = 300) -> None:
        self.max_age = max_age  # the certificates' Cache-Control (Google's: hours)
        self.fetches = 0  # GETs of the certificates, for tests of whoever caches them
        self._counting = threading.Lock()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(20)
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "simulated.gserviceaccount.com")])
        self.certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                            .not_valid_before(now - datetime.timedelta(days=1))
                            .not_valid_after(now + datetime.timedelta(days=30))
                            .sign(self.key, hashes.SHA256()))
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        self._signer = crypt.RSASigner.from_string(pem, key_id=self.kid)
        self._server: BurstHTTPServer | None = None
        self.certs_url = ""

    def certs(self) -> dict[str, str]:
        return {self.kid: self.certificate.public_bytes(serialization.Encoding.PEM).decode()}

    def token(self, audience: str, *, email: str, instance: dict | None = None, issued_at: float | None = None,
              lifetime: int = LIFETIME) -> str:
        """A signed identity token; `instance` ({id, name, zone, project_id, created}) makes it `full`."""
        now = int(issued_at if issued_at is not None else time.time())
        subject = str(int(hashlib.sha256(email.encode()).hexdigest(), 16) % 10**21)  # the account's unique id
        claims: dict = {"aud": audience, "azp": subject, "email": email, "email_verified": True,
                        "exp": now + lifetime, "iat": now, "iss": ISSUER, "sub": subject}
        if instance is not None:
            claims["google"] = {"compute_engine": {
                "instance_creation_timestamp": int(instance.get("created", now)),
                "instance_id": str(instance["id"]), "instance_name": instance["name"],
                "project_id": instance["project_id"], "project_number": int(PROJECT_NUMBER),
                "zone": instance["zone"]}}
        return jwt.encode(self._signer, claims).decode()

    # the certificates' endpoint ------------------------------------------------------------
    def serve(self) -> str:
        """Serve the certificates on loopback (every path); their URL."""
        body = json.dumps(self.certs()).encode()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with issuer._counting:
                    issuer.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Cache-Control", f"public, max-age={issuer.max_age}, must-revalidate")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = BurstHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="sim-gce-certs").start()
        self.certs_url = f"http://127.0.0.1:{self._server.server_address[1]}/oauth2/v1/certs"
        return self.certs_url

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            with contextlib.suppress(OSError):
                self._server.server_close()
            self._server = None

    def __enter__(self) -> IdentityIssuer:
        self.serve()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
