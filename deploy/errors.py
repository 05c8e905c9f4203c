"""The one family of errors that code under `deploy/` raises for the `platform` command.

`PlatformError` is the base; the CLI maps `UserError` to exit 2 (invalid input with no
file position: a bad argument, a refused confirmation nobody can give) and `RuntimeFailure`
to exit 1 (something failed while running: Terraform, a process that would not start).
Library code raises these and never imports `deploy.cli`; located platform.yaml errors
stay `render.errors.ConfigErrors`.
"""

from __future__ import annotations


class PlatformError(Exception):
    """Worth one plain line to the user, never a traceback."""

    exit_code = 1


class UserError(PlatformError):
    """Invalid input that has no file position (exit 2)."""

    exit_code = 2


class RuntimeFailure(PlatformError):
    """A runtime failure (exit 1)."""

    exit_code = 1
