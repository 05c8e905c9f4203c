"""Fixtures of the tests that drive the machines layer against a real moto server
(registered for every test module by tests/conftest.py, so none imports them):

- `moto_server`: one moto server per test module (tests/support/moto_server.py);
- `aws`: that server, emptied, with its endpoint and credentials in this process's environment;
- `platform_text`: the schema contract (tests/data/platform.example.yaml) aimed at aws;
- `fleet`: `aws` holding the reaper tests' instances (tests/support/reaper_fleet.py):
  (the server, the machines layer on it, the instance ids by name);
- `vm_site`: `aws` holding an aws platform's published build for the VM spawner's tests
  (tests/support/vm_spawner_site.py).
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


@pytest.fixture
def fleet(aws: MotoServer):
    from tests.support.reaper_fleet import aws_fleet

    return aws_fleet(aws)


@pytest.fixture
def vm_site(tmp_path, aws: MotoServer, example_text: str):
    from tests.support.vm_spawner_site import spawner_site

    return spawner_site(tmp_path, aws, example_text)
