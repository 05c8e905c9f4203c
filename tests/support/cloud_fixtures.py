"""Fixtures several cloud test modules share (registered for every test module by
tests/conftest.py, so none imports them):

- `laptop`: the laptop's Python (tests/support/laptop.py), one venv per session;
- `aws_tiny`, `gcp_tiny`: the session's `aws_platform` / `gcp_platform` with tiny, locked
  environments (their wheels published by apply) for the module's tests; as it was after.
  Each apply and its revert cost a Terraform apply and a hub config sync: when the next
  module on the platform takes the tiny environments too, they are handed over as they are,
  and when no later test uses the platform (its destroy follows) they are not reverted
  (tests/support/xdist_groups.py runs a chain's tiny modules last, one after another);
- `gcp_operator`: an operator's checkout of a gcp platform on Google's fakes
  (tests/support/gcp_operator.py), for the module's tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def laptop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.laptop import laptop_python

    return laptop_python(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def aws_tiny(request: pytest.FixtureRequest, aws_platform, tiny_handover) -> Iterator:
    yield from _tiny(request, aws_platform, tiny_handover, "aws_tiny", "aws_platform")


@pytest.fixture(scope="module")
def gcp_tiny(request: pytest.FixtureRequest, gcp_platform, tiny_handover) -> Iterator:
    yield from _tiny(request, gcp_platform, tiny_handover, "gcp_tiny", "gcp_platform")


@pytest.fixture(scope="session")
def tiny_handover() -> Iterator[dict]:
    """The tiny environments a module handed over to the next (tests/support/handover.py)."""
    from tests.support.handover import closing_unreverted

    held: dict = {}
    yield held
    closing_unreverted(held)


@pytest.fixture(scope="module")
def gcp_operator(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from tests.support.gcp_operator import gcp_operator

    with gcp_operator(tmp_path_factory.mktemp("gcp-operator")) as operator:
        yield operator


def _tiny(request: pytest.FixtureRequest, platform, held: dict, name: str, platform_name: str) -> Iterator:
    from tests.support.cloud_e2e import environments_applied, tiny_environments
    from tests.support.handover import handed_over
    from tests.support.hub_wheelhouse import hub_wheels

    def enter(stack: ExitStack, revert: Callable[[], bool]):
        return stack.enter_context(environments_applied(platform, tiny_environments(platform.text), hub_wheels(),
                                                        revert=revert))

    yield from handed_over(request, held, name, platform_name, enter)
