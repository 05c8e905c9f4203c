"""Software environments: lock (`platform lock`), build with uv, and look up at run time."""
