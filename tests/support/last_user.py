"""A session fixture torn down right after the last test that uses it, not at the end of the
session (registered by tests/conftest.py).

A platform booted on the simulator (`aws_platform`, `gcp_platform`) keeps its hub VM, its
moto server and its sandboxes running until its destroy; at the session's end that destroy
comes after every other test the worker took, when the other workers may be idle. Here it
comes as soon as its chain is done: the worker's later tests run without the platform's
processes beside them, and the destroy overlaps the other workers' tests.

    yield from until_last_user(request, "aws_platform", booted_aws_platform(root))

The last user is found in the order the tests run (under xdist a platform's chain runs whole
on one worker, tests/support/xdist_groups.py). Its teardown reports what the closing raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import TypeVar

import pytest

T = TypeVar("T")
_KEY = pytest.StashKey[dict[str, ExitStack]]()


def until_last_user(request: pytest.FixtureRequest, name: str, manager: AbstractContextManager[T]) -> Iterator[T]:
    """A session fixture's body: `manager` entered, and exited after the last test using `name`."""
    stack = ExitStack()
    value = stack.enter_context(manager)
    open_fixtures = request.config.stash.setdefault(_KEY, {})
    open_fixtures[name] = stack
    try:
        yield value
    finally:
        open_fixtures.pop(name, None)
        stack.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    result = yield
    open_fixtures = item.config.stash.get(_KEY, {})
    for name in [name for name in open_fixtures if name in item.fixturenames]:
        if not _used_later(item, name):
            open_fixtures.pop(name).close()
    return result


def _used_later(item: pytest.Item, name: str) -> bool:
    items = item.session.items
    try:
        index = items.index(item)
    except ValueError:
        return True  # not a collected test of this session: leave the fixture to the session's end
    return any(name in later.fixturenames for later in items[index + 1:])
