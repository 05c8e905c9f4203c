"""dask-gateway server side of graticule, the only package that imports dask_gateway_server:
cluster options, policy, budgets hooks, the SDK's API and the backends (local, vm, aws, gcp)."""
