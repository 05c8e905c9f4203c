"""A module fixture's state on a session platform, handed over to the next module that wants
it as it is, instead of reverted and set up again (tests/support/cloud_fixtures.py's tiny
environments: each apply and its revert cost a Terraform apply and a hub config sync).

`handed_over(request, held, name, platform, enter)` is a module fixture's body:
- it takes the state from `held` if the module before handed it over, else sets it up with
  `enter(stack, revert)` (the state's context managers entered on `stack`; on closing, they
  revert the platform when `revert()` says so);
- after the module: if the next test that uses `platform` uses `name` too, the state is
  handed over in `held`; else the stack is closed, reverting the platform unless no later
  test uses it at all (its destroy follows).

`held` is a session fixture's dict (see `closing_unreverted`): requested after the platform,
it is torn down before it, so a run that ends early leaves nothing open to the destroy.
`--tiny-handover off` (tests/support/xdist_groups.py) makes every module revert its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

T = TypeVar("T")


@dataclass
class Held:
    """A state set up on a platform; `revert` says what closing `stack` does."""

    stack: ExitStack = field(default_factory=ExitStack)
    revert: bool = True
    value: object = None  # what the module fixture yields


def handed_over(request: pytest.FixtureRequest, held: dict[str, Held], name: str, platform: str,
                enter: Callable[[ExitStack, Callable[[], bool]], T]) -> Iterator[T]:
    state = held.pop(name, None)
    if state is None:
        state = Held()
        state.value = enter(state.stack, lambda: state.revert)
    yield state.value  # type: ignore[misc]
    if request.config.getoption("tiny_handover", default="on") == "on":  # off: the benchmark's baseline
        later = next_user(request, platform)
        if later is not None and name in later.fixturenames:
            held[name] = state  # the next module on the platform takes it as it is
            return
        state.revert = later is not None
    state.stack.close()


def closing_unreverted(held: dict[str, Held]) -> None:
    """At the session's end: close what is still handed over, without reverting."""
    for state in held.values():
        state.revert = False
        state.stack.close()
    held.clear()


def next_user(request: pytest.FixtureRequest, fixture: str) -> pytest.Item | None:
    """The first test after the requesting module's tests that uses `fixture`, in the order
    the tests run (under xdist a platform's chain runs whole on one worker, in this order)."""
    items = request.session.items
    mine = [index for index, item in enumerate(items) if getattr(item, "module", None) is request.module]
    if not mine:
        return None
    return next((item for item in items[max(mine) + 1:] if fixture in item.fixturenames), None)
