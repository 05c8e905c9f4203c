"""Side-effecting half of graticule: the CLI, terraform runner, local supervisor, backends."""
