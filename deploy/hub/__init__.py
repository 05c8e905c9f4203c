"""Runtime classes that the rendered JupyterHub configuration names by import string."""
