"""Fixtures of the cloud e2e modules (registered for every test module by tests/conftest.py,
so none imports them):

- `laptop`: the laptop's Python (tests/support/laptop.py), one venv per session;
- `aws_tiny`, `gcp_tiny`: the session's `aws_platform` / `gcp_platform` with tiny, locked
  environments (their wheels published by apply) for the module's tests; as it was after.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def laptop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.laptop import laptop_python

    return laptop_python(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def aws_tiny(aws_platform) -> Iterator:
    yield from _tiny(aws_platform)


@pytest.fixture(scope="module")
def gcp_tiny(gcp_platform) -> Iterator:
    yield from _tiny(gcp_platform)


def _tiny(platform) -> Iterator:
    from tests.support.cloud_e2e import environments_applied, tiny_environments
    from tests.support.hub_wheelhouse import hub_wheels

    with environments_applied(platform, tiny_environments(platform.text), hub_wheels()) as tiny:
        yield tiny
