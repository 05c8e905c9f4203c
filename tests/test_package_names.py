"""The SDK's package sync and the build side name packages the same way (packaging's rule)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from deploy.environments.syncbuild import _name
from graticule.sync import canonical

NAMES = st.from_regex(r"\A[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?\Z")


def test_runs_of_separators_collapse_to_one_dash():
    # The hand-written rule made `foo--bar` of this and warned of a mismatch that was not one.
    assert canonical("Foo__Bar") == "foo-bar" == _name("Foo__Bar==1.0")
    assert canonical("zope.Interface") == "zope-interface"


@given(NAMES)
def test_sdk_and_build_side_agree_on_every_name(name):
    assert canonical(name) == _name(f"{name}>=0")
