"""The `GRATICULE_*` environment contract: every variable the platform's processes pass
to each other, named once.

The supervisor (or a hub VM's systemd units) sets the runtime values for the hub, its
proxy and the gateway; the rendered configs (`render/templates/*.tmpl`) read them; the
spawner passes some on to notebook servers, where the SDK reads them (through
`graticule/_env.py`, its own copy of the names it uses, since it imports nothing of ours;
tests/test_env_contract.py keeps the two equal and finds any name spelled elsewhere).
Operator settings come from the operator's environment, never from platform.yaml, and are
passed through.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

# -- set by the supervisor for each component --------------------------------------------
STATE_DIR = "GRATICULE_STATE_DIR"  # also marks every process of a platform (see deploy.local.processes)
HUB_URL = "GRATICULE_HUB_URL"  # the public URL (the proxy)
HUB_API_URL = "GRATICULE_HUB_API_URL"
HUB_BIND_URL = "GRATICULE_HUB_BIND_URL"  # where the hub itself listens, behind the proxy
PROXY_API_URL = "GRATICULE_PROXY_API_URL"
GATEWAY_URL = "GRATICULE_GATEWAY_URL"
GATEWAY_SCHEDULER_URL = "GRATICULE_GATEWAY_SCHEDULER_URL"  # TLS, SNI-routed to schedulers
# (hub VM) the load balancer's addresses, for browsers and laptops: OAuth callbacks, discovery
PUBLIC_HUB_URL = "GRATICULE_PUBLIC_HUB_URL"
PUBLIC_SCHEDULER_URL = "GRATICULE_PUBLIC_SCHEDULER_URL"
GATEWAY_SERVICE_URL = "GRATICULE_GATEWAY_SERVICE_URL"  # (hub) where its proxy reaches the gateway's HTTP
DISCOVERY_URL = "GRATICULE_DISCOVERY_URL"  # (hub) the SDK's discovery service
PAGES_URL = "GRATICULE_PAGES_URL"  # (hub) the usage pages service (deploy/hub/pages)
PAGES = "GRATICULE_PAGES"  # (usage pages service) its JSON settings, set by the hub config
DISCOVERY = "GRATICULE_DISCOVERY"  # (discovery service) its JSON settings, set by the hub config
OAUTH_CLIENT_SECRET = "GRATICULE_OAUTH_CLIENT_SECRET"  # secret: the hub's OAuth client
GATEWAY_API_TOKEN = "GRATICULE_GATEWAY_API_TOKEN"  # secret: the gateway's hub service token
ADMIN_API_TOKEN = "GRATICULE_ADMIN_API_TOKEN"  # secret: the supervisor's hub service token
PROXY_AUTH_TOKEN = "CONFIGPROXY_AUTH_TOKEN"  # secret: configurable-http-proxy's own name

# -- set by the spawner for a notebook server ---------------------------------------------
PROFILE = "GRATICULE_PROFILE"
ENVIRONMENT = "GRATICULE_ENVIRONMENT"

# -- read by the SDK (graticule/_env.py), on a notebook server or a laptop -----------------
TOKEN = "GRATICULE_TOKEN"
CONFIG_DIR = "GRATICULE_CONFIG_DIR"
SDK_NAMES = (HUB_URL, TOKEN, GATEWAY_URL, GATEWAY_SCHEDULER_URL, CONFIG_DIR)

# -- operator settings, passed through ----------------------------------------------------
LEDGER_URL = "GRATICULE_LEDGER_URL"
# secret: the hub's and the gateway's database (PostgreSQL) instead of SQLite in the state
# directory; on the hub VM from the `database-url` secret, which also becomes LEDGER_URL.
DATABASE_URL = "GRATICULE_DATABASE_URL"
SMTP_HOST = "GRATICULE_SMTP_HOST"
SMTP_PORT = "GRATICULE_SMTP_PORT"
ALERTS_FROM = "GRATICULE_ALERTS_FROM"
BUDGET_MIN_WINDOW = "GRATICULE_BUDGET_MIN_WINDOW"  # e.g. "10m", a duration like platform.yaml's
METER_INTERVAL = "GRATICULE_METER_INTERVAL"
JOBS_INTERVAL = "GRATICULE_JOBS_INTERVAL"  # seconds between the jobs scheduler's passes
DEBUG = "GRATICULE_DEBUG"  # the CLI prints tracebacks
TF_PLUGIN_DIR = "GRATICULE_TF_PLUGIN_DIR"  # a Terraform provider mirror (deploy.terraform)
TF_OVERRIDES = "GRATICULE_TF_OVERRIDES"  # Terraform override files (deploy.cloud_stack)
TF_BACKEND_CONFIG = "GRATICULE_TF_BACKEND_CONFIG"  # a -backend-config file (deploy.cloud_stack)
# Where the CLI reaches a cloud target's hub instead of the `hub_url` output (a tunnel, a test).
CLOUD_HUB_URL = "GRATICULE_CLOUD_HUB_URL"
# Wheels for the hub VM's wheelhouse from this directory or URL, no index (deploy.vm.wheelhouse).
WHEELHOUSE_FIND_LINKS = "GRATICULE_WHEELHOUSE_FIND_LINKS"
CONFIG_SYNC_INTERVAL = "GRATICULE_CONFIG_SYNC_INTERVAL"  # seconds between the hub VM's config checks
# A GitHub Actions variable of the operator's repository (gitops workflow templates).
CI_WORKLOAD_IDENTITY_PROVIDER = "GRATICULE_WORKLOAD_IDENTITY_PROVIDER"
OPERATOR_SETTINGS = (
    LEDGER_URL, DATABASE_URL, SMTP_HOST, SMTP_PORT, ALERTS_FROM, BUDGET_MIN_WINDOW, METER_INTERVAL, JOBS_INTERVAL
)

# Variables of another hub or gateway that a component must not inherit from the caller.
FOREIGN_PREFIXES = ("GRATICULE_", "JUPYTERHUB_", "JPY_", "DASK_GATEWAY", "CONFIGPROXY_")
# Variables a change of which restarts a component (see deploy.runtime.components).
FINGERPRINTED_PREFIXES = ("GRATICULE_", "CONFIGPROXY_")


def component_environment(
    values: Mapping[str, str], withheld: Iterable[str] = (), caller: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A component's environment: the caller's, minus anything that belongs to another hub
    or gateway, plus this platform's `values` and the operator's settings, without the
    `withheld` variables (each component gets only the secrets it uses)."""
    caller = os.environ if caller is None else caller
    env = {key: value for key, value in caller.items() if not key.startswith(FOREIGN_PREFIXES)}
    env.update(values)
    env.update({key: caller[key] for key in OPERATOR_SETTINGS if caller.get(key)})
    for key in withheld:
        env.pop(key, None)
    return env

# On the machines the gateway and the hub launch (deploy.cloud.machine_boot, deploy.vm.notebook_server)
MACHINE_PYTHON = "GRATICULE_PYTHON"  # the Python of the machine's environment, for the command it runs
MACHINE_ROOT = "GRATICULE_MACHINE_ROOT"  # tests: a root for the boot script to write under
IMDS_URL = "GRATICULE_IMDS_URL"  # tests: the instance metadata service (default: EC2's link-local address)
GOOGLE_ENDPOINTS = "GRATICULE_GOOGLE_ENDPOINTS"  # tests: a file of stand-in Google API endpoints
MACHINE_ID = "GRATICULE_MACHINE_ID"  # (gcp) the machine's id in the machines layer: the instance's name
