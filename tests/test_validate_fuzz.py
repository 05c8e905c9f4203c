"""Hypothesis mutates the example (keys deleted, inserted, retyped; random bytes) and the
CLI must answer every variant with exit 0 or 2: never a crash, a traceback or a hang."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from deploy.cli.main import main
from tests.conftest import REPO

EXAMPLE = (REPO / "platform.yaml").read_text()
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["8GiB", "20m", "10.0.0.0/16", "small", "ocean", "aws", "3.11", "dask==1"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _tree():
    return YAML(typ="safe").load(EXAMPLE)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


ALL_PATHS = [path for path in _paths(_tree()) if path]


def _mutate(tree, path, action, value, key):
    parent = tree
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "retype":
        parent[last] = value
    elif action == "insert" and isinstance(parent[last], dict):
        parent[last][key] = value
    elif action == "insert" and isinstance(parent[last], list):
        parent[last].append(value)
    else:
        parent[last] = value


def _dump(tree) -> str:
    out = io.StringIO()
    YAML(typ="safe").dump(tree, out)
    return out.getvalue()


def _validate(tmp_path, payload: bytes, capsys) -> int:
    target = tmp_path / "platform.yaml"
    target.write_bytes(payload)
    code = main(["validate", str(target)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" not in captured.err, captured.err
    if code == 2:
        assert all(line.startswith(f"{target}:") for line in captured.err.strip().splitlines()), captured.err
    return code


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.timeout(300)
@FUZZ
@given(
    mutations=st.lists(
        st.tuples(
            st.sampled_from(ALL_PATHS),
            st.sampled_from(["delete", "retype", "insert"]),
            VALUES,
            st.text(min_size=1, max_size=10),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_structural_mutations_never_crash(tmp_path, capsys, mutations):
    tree = _tree()
    for path, action, value, key in mutations:
        try:
            _mutate(tree, path, action, value, key)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or reshaped this path
    assert _validate(tmp_path, _dump(tree).encode(), capsys) in (0, 2)


@pytest.mark.timeout(300)
@FUZZ
@given(
    position=st.integers(min_value=0, max_value=len(EXAMPLE.encode()) - 1),
    garbage=st.binary(min_size=1, max_size=16),
    cut=st.booleans(),
)
def test_random_bytes_never_crash(tmp_path, capsys, position, garbage, cut):
    raw = EXAMPLE.encode()
    payload = raw[:position] + garbage + (b"" if cut else raw[position + len(garbage) :])
    assert _validate(tmp_path, payload, capsys) in (0, 2)
