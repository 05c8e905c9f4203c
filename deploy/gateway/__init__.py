"""dask-gateway server side of graticule: cluster options, policy and backends."""
