"""Shared pytest setup: paths every test uses."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

# Plugins of the whole suite: the xdist groups (which tests may run side by side), stopping
# xdist's workers cleanly, the moto-backed fixtures several modules share, the cloud e2e
# modules' laptop and tiny environments, the machine-secret broker's parts, the summary of
# where a run's time went, and the destroy of a session platform right after its last test.
pytest_plugins = ("tests.support.xdist_groups", "tests.support.xdist_workers", "tests.support.aws_fixtures",
                  "tests.support.cloud_fixtures", "tests.support.broker_fixtures", "tests.support.worker_time",
                  "tests.support.last_user")

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20,21,22")

REPO = Path(__file__).resolve().parent.parent
SHARED_EXAMPLE = REPO.parent / "shared" / "platform.example.yaml"
# The tests' own copy of the schema contract, so they run in any clone; a test checks
# that it matches ../shared's when that exists (tests/test_validate_cli.py).
EXAMPLE_COPY = REPO / "tests" / "data" / "platform.example.yaml"


def _interrupt(signum: int, frame: object) -> None:
    from tests.support import xdist_workers  # here, not at the top: pytest_plugins loads it first

    if xdist_workers.forward(signum):
        return  # xdist's controller: the workers tear down, then xdist ends the run
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # `timeout`, `kill` and CI runners end a run with SIGTERM, which by default kills pytest
    # before any fixture's finally: the hubs, gateways and PostgreSQL servers that tests
    # started would outlive it. As an interrupt, pytest tears every fixture down first.
    from tests.support import xdist_workers

    xdist_workers.remember(config)
    signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture
def example_text() -> str:
    """The schema contract (the tests' copy of ../shared/platform.example.yaml)."""
    return EXAMPLE_COPY.read_text()


@pytest.fixture
def clock():
    """A ledger clock stopped in mid-November (tests move it by hand)."""
    from deploy.ledger import ManualClock
    from tests.support.ledger import MID_NOVEMBER

    return ManualClock(MID_NOVEMBER)


@pytest.fixture
def ledger(ledger_url, clock):
    """An open ledger at `ledger_url` (the test module imports that fixture from
    tests/support/ledger.py: SQLite, and PostgreSQL where it is parametrised) on `clock`."""
    from deploy.ledger import Ledger

    opened = Ledger.open(ledger_url, clock=clock)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def aws_platform(request, tmp_path_factory):
    """One platform booted on the simulated AWS for the session (tests/support/aws_platform.py):
    the AWS e2e modules share its hub; each leaves it as it found it. Destroyed after the last
    of them (tests/support/last_user.py)."""
    from tests.support.simulator import simulator_unavailable
    from tests.support.terraform import provider_mirror_or_skip

    if (reason := simulator_unavailable()) is not None:
        pytest.skip(reason)
    provider_mirror_or_skip()
    from tests.support.aws_platform import booted_aws_platform
    from tests.support.last_user import until_last_user

    yield from until_last_user(request, "aws_platform", booted_aws_platform(tmp_path_factory.mktemp("aws-platform")))


@pytest.fixture(scope="session")
def gcp_platform(request, tmp_path_factory):
    """One platform on the simulated GCP for the session (tests/support/gcp_platform.py):
    the GCP e2e modules share its hub; each leaves it as it found it. Destroyed after the last
    of them (tests/support/last_user.py)."""
    from tests.support.simulator import simulator_unavailable

    if (reason := simulator_unavailable()) is not None:
        pytest.skip(reason)
    from tests.support.gcp_platform import booted_gcp_platform
    from tests.support.last_user import until_last_user

    yield from until_last_user(request, "gcp_platform", booted_gcp_platform(tmp_path_factory.mktemp("gcp-platform")))
