"""`platform schema` is a JSON Schema that editors can use: it accepts the example and
rejects invalid documents."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO


@pytest.fixture(scope="module")
def schema() -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.cli.main", "schema"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(document)
    return document


def _load(text: str):
    return YAML(typ="safe").load(text)


def test_schema_accepts_the_example(schema, example_text):
    jsonschema.validate(_load(example_text), schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("memory: 8GiB", "memory: 8 gigs"),
        ("idle_timeout: 20m", "idle_timout: 20m"),
        ("on_exhausted: stop ", "on_exhausted: pause "),
        ("apiVersion: graticule/v1", "apiVersion: graticule/v9"),
        ("cpu: 2", "cpu: two"),
    ],
)
def test_schema_rejects_invalid_documents(schema, example_text, old, new):
    assert old in example_text
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_load(example_text.replace(old, new, 1)), schema, cls=jsonschema.Draft202012Validator)
