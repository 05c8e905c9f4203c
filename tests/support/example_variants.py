"""The schema contract (tests/data/platform.example.yaml) as data, and the validation
problems of a variant of it: what the edge-case tests of validation, costs and defaults
start from."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

from ruamel.yaml import YAML

from render.errors import ConfigErrors
from render.validate import validate_text
from tests.conftest import EXAMPLE_COPY

EXAMPLE = YAML(typ="safe").load(EXAMPLE_COPY.read_text())

Edit = Callable[[dict], None]


def problems(edit: Edit | None = None, **replace) -> dict[str, str]:
    """field -> message of every validation error, for the example changed by `edit` and
    top-level `replace`; {} when the variant is valid."""
    data = copy.deepcopy(EXAMPLE)
    data.update(replace)
    if edit:
        edit(data)
    try:
        validate_text(json.dumps(data))
    except ConfigErrors as errors:
        found = {issue.field: issue.message for issue in errors.issues}
        assert len(found) == len(errors.issues), errors.issues  # one error per field in these tests
        return found
    return {}
