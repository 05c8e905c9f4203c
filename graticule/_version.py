"""The one place the version is written: pyproject.toml reads it (dynamic version), the SDK
exports it as `graticule.__version__` and `platform --version` prints it."""

__version__ = "0.1.0"
