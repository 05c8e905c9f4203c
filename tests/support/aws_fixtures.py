"""Fixtures of the tests that drive the machines layer against a real moto server
(registered for every test module by tests/conftest.py, so none imports them):

- `moto_server`: one moto server per test module (tests/support/moto_server.py);
- `aws`: that server, emptied, with its endpoint and credentials in this process's environment;
- `platform_text`: the schema contract (tests/data/platform.example.yaml) aimed at aws.
"""

from __future__ import annotations

import pytest

from tests.support.moto_server import MotoServer, moto_server  # noqa: F401  (pytest fixture)


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:  # noqa: F811
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    moto_server.reset()
    return moto_server


@pytest.fixture
def platform_text(example_text: str) -> str:
    return example_text.replace("target: local ", "target: aws   ")
