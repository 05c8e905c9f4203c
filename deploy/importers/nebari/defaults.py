"""What Nebari serves when its config leaves a section out (final release, 2025.10.1).

Copied from Nebari's schema classes (src/_nebari/stages/kubernetes_services/__init__.py
and src/_nebari/stages/infrastructure/__init__.py at tag 2025.10.1): a missing section
means these, not nothing.
"""

from __future__ import annotations

FINAL_RELEASE = "2025.10.1"

JUPYTERLAB_PROFILES: list[dict] = [
    {
        "display_name": "Small Instance",
        "description": "Stable environment with 2 cpu / 8 GB ram",
        "default": True,
        "kubespawner_override": {"cpu_limit": 2, "cpu_guarantee": 1.5, "mem_limit": "8G", "mem_guarantee": "5G"},
    },
    {
        "display_name": "Medium Instance",
        "description": "Stable environment with 4 cpu / 16 GB ram",
        "kubespawner_override": {"cpu_limit": 4, "cpu_guarantee": 3, "mem_limit": "16G", "mem_guarantee": "10G"},
    },
]

DASK_WORKER_PROFILES: dict[str, dict] = {
    "Small Worker": {
        "worker_cores_limit": 2,
        "worker_cores": 1.5,
        "worker_memory_limit": "8G",
        "worker_memory": "5G",
        "worker_threads": 2,
    },
    "Medium Worker": {
        "worker_cores_limit": 4,
        "worker_cores": 3,
        "worker_memory_limit": "16G",
        "worker_memory": "10G",
        "worker_threads": 4,
    },
}

ENVIRONMENTS: dict[str, dict] = {
    "environment-dask.yaml": {
        "name": "dask",
        "channels": ["conda-forge"],
        "dependencies": [
            "python==3.11.6",
            "ipykernel==6.26.0",
            "ipywidgets==8.1.1",
            f"nebari-dask=={FINAL_RELEASE}",
            "python-graphviz==0.20.1",
            "pyarrow==14.0.1",
            "s3fs==2023.10.0",
            "gcsfs==2023.10.0",
            "numpy=1.26.0",
            "numba=0.58.1",
            "pandas=2.1.3",
            "xarray==2023.10.1",
        ],
    },
    "environment-dashboard.yaml": {
        "name": "dashboard",
        "channels": ["conda-forge"],
        "dependencies": [
            "python==3.11.6",
            "cufflinks-py==0.17.3",
            "dash==2.14.1",
            "geopandas==0.14.1",
            "geopy==2.4.0",
            "geoviews==1.11.0",
            "gunicorn==21.2.0",
            "holoviews==1.18.1",
            "ipykernel==6.26.0",
            "ipywidgets==8.1.1",
            "jupyter==1.0.0",
            "jupyter_bokeh==3.0.7",
            "matplotlib==3.8.1",
            f"nebari-dask=={FINAL_RELEASE}",
            "nodejs=20.8.1",
            "numpy==1.26.0",
            "openpyxl==3.1.2",
            "pandas==2.1.3",
            "panel==1.3.1",
            "param==2.0.1",
            "plotly==5.18.0",
            "python-graphviz==0.20.1",
            "rich==13.6.0",
            "streamlit==1.28.1",
            "sympy==1.12",
            "voila==0.5.5",
            "xarray==2023.10.1",
            "pip==23.3.1",
            {
                "pip": [
                    "streamlit-image-comparison==0.0.4",
                    "noaa-coops==0.1.9",
                    "dash_core_components==2.0.0",
                    "dash_html_components==2.0.0",
                ]
            },
        ],
    },
}

NODE_GROUPS: dict[str, dict[str, dict]] = {
    "aws": {
        "general": {"instance": "m5.2xlarge", "min_nodes": 1, "max_nodes": 1},
        "user": {"instance": "m5.xlarge", "min_nodes": 0, "max_nodes": 5},
        "worker": {"instance": "m5.xlarge", "min_nodes": 0, "max_nodes": 5},
    },
    "gcp": {
        "general": {"instance": "e2-standard-8", "min_nodes": 1, "max_nodes": 1},
        "user": {"instance": "e2-standard-4", "min_nodes": 0, "max_nodes": 5},
        "worker": {"instance": "e2-standard-4", "min_nodes": 0, "max_nodes": 5},
    },
}

# jupyterlab.idle_culler.server_shutdown_no_activity_timeout, in minutes.
NOTEBOOK_IDLE_MINUTES = 15
# Nebari's dask-gateway module: `idle_timeout = 1800 # 30 minutes` (variables.tf).
DASK_IDLE_MINUTES = 30
# Keycloak groups Nebari creates in its realm; new users land in `analyst`.
KEYCLOAK_GROUPS = ("admin", "developer", "analyst")
ADMIN_GROUPS = ("admin", "superadmin")
# Provider defaults (src/_nebari/constants.py and the provider schemas).
AWS_VPC_CIDR = "10.10.0.0/16"
