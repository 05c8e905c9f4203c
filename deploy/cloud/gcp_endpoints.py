"""Where the Google APIs are, for code running on a platform VM.

On Google the client libraries' defaults are right. A test's simulated VM has no route to
Google: its simulator writes `/etc/graticule/google-endpoints.json`
(`{"compute": url, "storage": url, "secretmanager": url}`), standing in for Private Google
Access, and code on the VM uses those when the file is there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENDPOINTS_FILE = Path("/etc/graticule/google-endpoints.json")
ENDPOINTS_ENV = "GRATICULE_GOOGLE_ENDPOINTS"  # another file (tests outside a simulated VM)


def google_endpoint(service: str, path: Path | None = None) -> str | None:
    """The endpoint for `service` (compute, storage, secretmanager), or None: Google's default."""
    where = path or Path(os.environ.get(ENDPOINTS_ENV) or ENDPOINTS_FILE)
    try:
        endpoints = json.loads(where.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"{where}: not a JSON object of Google API endpoints ({error})") from None
    value = endpoints.get(service) if isinstance(endpoints, dict) else None
    return value if isinstance(value, str) and value else None
