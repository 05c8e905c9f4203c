"""`platform import nebari`: a Nebari (or QHub) config, and optionally a Keycloak realm
export, turned into a platform.yaml that validates as written, plus a report of what was
mapped, what was invented and what was dropped.

Pure functions over parsed data; the CLI command (deploy/cli/cmd_import.py) reads files,
prints the report and writes the result.
"""

from deploy.importers.nebari.assemble import ImportResult, import_nebari
from deploy.importers.nebari.options import ImportOptions, ImportRefused

__all__ = ["ImportOptions", "ImportRefused", "ImportResult", "import_nebari"]
