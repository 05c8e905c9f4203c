"""Pure half of graticule: load, validate and render platform.yaml. No side effects."""
