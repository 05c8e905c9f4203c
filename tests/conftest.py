"""Shared pytest setup: paths every test uses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20,21,22")

REPO = Path(__file__).resolve().parent.parent
SHARED_EXAMPLE = REPO.parent / "shared" / "platform.example.yaml"


@pytest.fixture
def example_text() -> str:
    """The schema contract from ../shared (falls back to the repository's copy)."""
    source = SHARED_EXAMPLE if SHARED_EXAMPLE.exists() else REPO / "platform.yaml"
    return source.read_text()
