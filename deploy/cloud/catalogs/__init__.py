"""Maintainer tooling: refresh the bundled machine catalogs (render/data/catalog_*.json)
from the clouds' own APIs. Never run by `validate` or `render`, which read the files."""
