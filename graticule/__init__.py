"""graticule: start Dask clusters on your organisation's platform.

    import graticule
    graticule.login("https://hub.example.org")        # once, on a laptop
    with graticule.Cluster(profile="large", adaptive=(0, 20)) as cluster:
        client = cluster.get_client()

Light on purpose: it needs only `distributed` and `dask-gateway`.
"""

from graticule._version import __version__
from graticule.account import clusters, profiles, usage
from graticule.cluster import Cluster
from graticule.errors import (
    AuthError,
    BudgetExceeded,
    ClusterNotFound,
    GatewayUnavailable,
    GraticuleError,
    NotAllowed,
    SyncError,
)
from graticule.jobs import cancel_job, job, job_logs, job_result, jobs, run_job, submit, wait_job
from graticule.login import login, logout

__all__ = [
    "AuthError",
    "BudgetExceeded",
    "Cluster",
    "ClusterNotFound",
    "GatewayUnavailable",
    "GraticuleError",
    "NotAllowed",
    "SyncError",
    "__version__",
    "cancel_job",
    "clusters",
    "job",
    "job_logs",
    "job_result",
    "jobs",
    "login",
    "logout",
    "profiles",
    "run_job",
    "submit",
    "usage",
    "wait_job",
]
