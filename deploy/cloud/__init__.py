"""The machines layer: launch, describe, terminate and list the platform's VMs.

The only place that calls a cloud SDK at run time (boto3 in `aws.py`, google-cloud-compute
in `gcp.py`, each imported lazily and installed with the `[aws]` / `[gcp]` extras). The
gateway's VM backends and the hub's notebook-server spawner talk to `Machines` only.
"""
