"""The `GRATICULE_*` environment variables the SDK reads. The platform's contract is
deploy/runtime/env.py; the SDK imports nothing of the platform, so it keeps its own copy of
the names it uses, and tests/test_env_contract.py fails if the two ever differ."""

from __future__ import annotations

HUB_URL = "GRATICULE_HUB_URL"
TOKEN = "GRATICULE_TOKEN"
GATEWAY_URL = "GRATICULE_GATEWAY_URL"
GATEWAY_SCHEDULER_URL = "GRATICULE_GATEWAY_SCHEDULER_URL"
CONFIG_DIR = "GRATICULE_CONFIG_DIR"
NAMES = (HUB_URL, TOKEN, GATEWAY_URL, GATEWAY_SCHEDULER_URL, CONFIG_DIR)
