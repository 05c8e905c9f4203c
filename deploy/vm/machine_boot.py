"""The agreed name of the launched machines' boot (issue 14's contract): the code lives in
`deploy.cloud.machine_boot`, beside the rest of what goes into a machine's user data
(`deadman.py`), so that the gateway, which `deploy.vm` imports, can use it too."""

from deploy.cloud.machine_boot import (  # noqa: F401  (re-exported)
    CACHE_DIR,
    ENVS_DIR,
    PLATFORM_VENV,
    PYTHON,
    WORKDIR,
    MachineBoot,
    machine_user_data,
)
