"""The machine-secret broker keeps Google's signing certificates as long as their response's
Cache-Control allows (deploy/gateway/signing_certs.py), counted on the simulator's
certificates server (tests/support/simulator/gce_identity.py): one fetch for a cluster's
machines asking at once, another once max-age has passed, an early one (at most once a
minute) for a key the kept certificates lack, none kept when the response says so. The
cache's clock is the test's: nothing waits for time to pass.
"""

from __future__ import annotations

import pytest

from deploy.gateway.signing_certs import REFETCH_AFTER, freshness
from tests.support.machine_secret_broker import (
    VALUES,
    Clock,
    ask,
    ask_all,
    broker_of,
    metadata_token,
)
from tests.support.simulator.gce_identity import IdentityIssuer


def test_broker_fetches_the_certificates_once_per_their_max_age(broker_secrets, broker_issuer, broker_fleet):
    broker_secrets.put("cluster-abc", VALUES, tags={"cluster": "abc", "user": "alice"})
    machines = broker_fleet.launch("oceanlab-abc-w", count=40, cluster="abc", role="worker", user="alice")
    clock = Clock()
    broker = broker_of(broker_secrets, broker_issuer, broker_fleet, clock)
    tokens = [metadata_token(broker_issuer, m) for m in machines]

    assert ask_all(broker, "cluster-abc", tokens) == [200] * len(tokens)
    assert broker_issuer.fetches == 1  # 40 machines at once: one fetch
    clock.now += broker_issuer.max_age - 1
    assert ask(broker, "cluster-abc", tokens[0])[0] == 200 and broker_issuer.fetches == 1
    clock.now += 1  # max-age reached: fetched again, once
    assert ask_all(broker, "cluster-abc", tokens[:5]) == [200] * 5 and broker_issuer.fetches == 2

    # A key the kept certificates lack: fetched early, but no more than once per REFETCH_AFTER
    with IdentityIssuer() as forger:
        forged = metadata_token(forger, machines[0])
    assert ask(broker, "cluster-abc", forged)[0] == 401 and broker_issuer.fetches == 2  # fetched just now
    clock.now += REFETCH_AFTER
    assert [ask(broker, "cluster-abc", forged)[0] for _ in range(3)] == [401] * 3
    assert broker_issuer.fetches == 3


def test_broker_keeps_no_certificates_their_response_says_not_to(broker_secrets, broker_fleet):
    broker_secrets.put("cluster-abc", VALUES, tags={"cluster": "abc", "user": "alice"})
    scheduler, = broker_fleet.launch("oceanlab-abc-s", cluster="abc", role="scheduler", user="alice")
    with IdentityIssuer(max_age=0) as issuer:
        broker = broker_of(broker_secrets, issuer, broker_fleet)
        token = metadata_token(issuer, scheduler)
        assert [ask(broker, "cluster-abc", token)[0] for _ in range(3)] == [200] * 3
        assert issuer.fetches == 3


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"Cache-Control": "public, max-age=19602, must-revalidate, no-transform"}, 19602),  # Google's
    ({"Cache-Control": "public, max-age=19602", "Age": "602"}, 19000),  # kept by a cache on the way
    ({"Cache-Control": "max-age=60", "Age": "90"}, 0),
    ({"Cache-Control": "no-store, max-age=60"}, 0),
    ({"Cache-Control": "no-cache"}, 0),
    ({"Cache-Control": "public, s-maxage=60"}, 0),  # a shared cache's, not ours
    ({}, 0),
])
def test_freshness_of_a_certificates_response(headers, seconds):
    assert freshness(headers) == seconds
