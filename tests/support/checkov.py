"""checkov, the static analysis of the rendered stacks (tests/test_checkov_*.py)."""

from __future__ import annotations

import importlib.util
import sys

import pytest


def checkov_command() -> list[str]:
    """checkov from the interpreter running the tests (it is in the test extra); a missing
    checkov fails the test, saying so, rather than skipping it."""
    if importlib.util.find_spec("checkov") is None:
        pytest.fail("checkov is not installed for this interpreter: pip install -e '.[test]'")
    return [sys.executable, "-m", "checkov.main"]
