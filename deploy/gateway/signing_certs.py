"""Google's identity-token signing certificates for the machine-secret broker, fetched once and
kept as long as the response's `Cache-Control: max-age` (less its `Age`) says, as Google asks
of verifiers (https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken).

google-auth's `id_token.verify_token` fetches them on every call; a cluster of hundreds of
machines booting at once would ask Google hundreds of times. A token signed by a key the
kept certificates do not hold makes one early fetch (Google adds a key to the set before it
signs with it, but our copy may predate that), at most once per `refetch_after` seconds so
forged key ids cannot turn the broker into a fetch loop.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NOT_KEPT = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:[,=]|$)", re.IGNORECASE)
REFETCH_AFTER = 60.0  # seconds between fetches asked for by an unknown key id


class CertificatesUnavailable(Exception):
    """The certificates could not be fetched (the broker answers 503)."""


def freshness(headers: Mapping[str, str]) -> float:
    """Seconds a response may be kept: its max-age less its Age; 0 when it must not be kept."""
    control = headers.get("Cache-Control") or ""
    if _NOT_KEPT.search(control):
        return 0.0
    found = _MAX_AGE.search(control)
    if found is None:
        return 0.0
    try:
        age = float(headers.get("Age") or 0)
    except ValueError:
        age = 0.0
    return max(0.0, float(found.group(1)) - max(0.0, age))


class SigningCerts:
    """`{key id: PEM certificate}` from `url`, cached by the response's own freshness."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.monotonic,
                 refetch_after: float = REFETCH_AFTER, timeout: float = 10.0) -> None:
        self.url, self.clock, self.refetch_after, self.timeout = url, clock, refetch_after, timeout
        self._certs: dict[str, str] | None = None
        self._fetched_at = self._expires_at = 0.0
        self._lock = threading.Lock()  # requests arrive on several threads: one fetch for all of them

    def for_key(self, key_id: str | None) -> dict[str, str]:
        """The certificates that should hold `key_id`; CertificatesUnavailable if they cannot be had."""
        with self._lock:
            now = self.clock()
            stale = self._certs is None or now >= self._expires_at
            unknown = (key_id is not None and self._certs is not None and key_id not in self._certs
                       and now - self._fetched_at >= self.refetch_after)
            if stale or unknown:
                self._fetch(now)
            assert self._certs is not None
            return self._certs

    def _fetch(self, now: float) -> None:
        import google.auth.transport.requests
        from google.auth import exceptions

        request = google.auth.transport.requests.Request()
        try:
            response = request(self.url, method="GET", timeout=self.timeout)
        except exceptions.TransportError as error:
            raise CertificatesUnavailable(f"{self.url}: {error}") from None
        if response.status != 200:
            raise CertificatesUnavailable(f"{self.url} answered {response.status}")
        try:
            certs = json.loads(response.data.decode())
        except ValueError as error:
            raise CertificatesUnavailable(f"{self.url} answered no JSON: {error}") from None
        if not isinstance(certs, dict) or not all(isinstance(v, str) for v in certs.values()):
            raise CertificatesUnavailable(f"{self.url} answered no {{key id: PEM certificate}} map")
        self._certs, self._fetched_at = certs, now
        self._expires_at = now + freshness(response.headers)
