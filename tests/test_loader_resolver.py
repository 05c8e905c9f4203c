"""The loader works out the YAML version once per parse instead of once per scalar (a
speed-up for big files): what it reads must not change, including under `%YAML 1.1`."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from render import loader
from tests.conftest import REPO

TEXTS = [
    (REPO / "platform.yaml").read_text(),
    "a: yes\nb: on\nc: 1.5\nd: 010\ne: null\nf: ~\ng: 0x1f\nh: .inf\ni: 2026-01-01\nj: [1, true, 'x']\n",
    "%YAML 1.1\n---\na: yes\nb: on\nc: 010\nd: 1_000\n",
]


def _stock(text: str) -> object:
    """The same text through ruamel.yaml's own resolver (plain values, as the loader keeps)."""
    return YAML(typ="safe", pure=False).load(text)


@pytest.mark.parametrize("text", TEXTS, ids=["example", "yaml-1.2-scalars", "yaml-1.1-directive"])
def test_same_values_as_ruamels_own_resolver(text: str) -> None:
    ours = loader.parse(text, "platform.yaml").data

    def plain(value: object) -> object:  # the loader keeps dates and the like as their text
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        return value if isinstance(value, bool | int | float | str | type(None)) else str(value)

    assert ours == plain(_stock(text))
