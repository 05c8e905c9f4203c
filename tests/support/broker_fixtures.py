"""Fixtures of the machine-secret broker's tests (tests/test_machine_secret_broker.py,
tests/test_broker_certificates.py), registered for every test module by tests/conftest.py;
named for the broker so none shadows a global fixture (`fleet` is the AWS one):

- `broker_secret_manager`: the Secret Manager fake, running;
- `broker_secrets`: the platform's machine secrets in it;
- `broker_issuer`: the simulator's identity issuer and its certificates server;
- `broker_fleet`: instances in the fake Compute API (tests/support/machine_secret_broker.Fleet).

Imports are inside the fixtures: loading this plugin costs a run that uses none of them nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def broker_secret_manager() -> Iterator:
    from tests.support.gcp.secret_manager import running_secret_manager
    from tests.support.machine_secret_broker import PROJECT

    with running_secret_manager(PROJECT) as fake:
        yield fake


@pytest.fixture
def broker_secrets(broker_secret_manager):
    from tests.support.machine_secret_broker import machine_secrets

    return machine_secrets(broker_secret_manager)


@pytest.fixture
def broker_issuer() -> Iterator:
    from tests.support.simulator.gce_identity import IdentityIssuer

    with IdentityIssuer() as running:
        yield running


@pytest.fixture
def broker_fleet() -> Iterator:
    from tests.support.machine_secret_broker import running_fleet

    with running_fleet() as running:
        yield running
