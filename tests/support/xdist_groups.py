"""Which tests may run side by side on pytest-xdist's workers (`--dist loadgroup`).

Registered by tests/conftest.py, so a new test module is placed without anyone remembering to:
- `simulator` group: every module that boots machines in the machine simulator (it imports
  the simulator or its availability check) or uses a platform booted on it once per session
  (a session fixture named `*_platform`: `aws_platform`, `gcp_platform`). They run one after
  another on one worker: the booted platform is per worker process, and namespaces, the
  bridge and nft rules are the machine's. They also carry the `simulator` mark, so
  `-m "not simulator"` selects the rest. (A module that boots the simulator through a helper
  imports `simulator_unavailable` for its skip, or uses a `*_platform` fixture.)
- a group per module for a module whose tests share a module-, package- or class-scoped
  fixture (a running hub, a moto server): split over two workers, each would start its own.
- every other test is scheduled on its own.

Under xdist the simulator group is put first, so its long chain starts at once on one worker
while the other takes the rest: whole modules, then `slow` single tests, then the quick ones
(scripts/test.sh passes `--no-loadscope-reorder` to keep that order). Without xdist (`-n 0`,
`-p no:xdist`) the marks are inert and the order is the collection order.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

import pytest

SIMULATOR_GROUP = "simulator"
# A test module that refers to any of these boots machines in the simulator.
SIMULATOR_NAMES = ("Simulator", "GceSimulator", "simulator_unavailable")
SIMULATOR_PACKAGE = "tests.support.simulator"
SHARED_SCOPES = ("class", "module", "package")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "simulator: uses the machine simulator; runs on one xdist worker")
    # Registered by xdist itself too; here so `-p no:xdist` still passes --strict-markers.
    config.addinivalue_line("markers", "xdist_group(name): run the tests of the group on one xdist worker")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups and `-m` deselects by mark
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups = module_groups(items)
    for item in items:
        group = groups.get(module_id(item))
        if group == SIMULATOR_GROUP:
            item.add_marker(pytest.mark.simulator)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    if config.getoption("loadgroup", default=False):
        # Stable: within a module, the tests keep their order.
        items.sort(key=lambda item: _start_order(groups.get(module_id(item)), item.get_closest_marker("slow")))


def module_groups(items: Iterable[pytest.Item]) -> dict[str, str]:
    """The xdist group of each test module that needs one, by module id (its path)."""
    groups: dict[str, str] = {}
    for item in items:
        module = module_id(item)
        if groups.get(module) == SIMULATOR_GROUP:
            continue
        if uses_simulator(item):
            groups[module] = SIMULATOR_GROUP
        elif shares_fixtures(item):
            groups[module] = module
    return groups


def module_id(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def uses_simulator(item: pytest.Item) -> bool:
    return _module_uses_simulator(getattr(item, "module", None)) or any(
        name.endswith("_platform") and scope == "session" for name, scope in _fixture_scopes(item)
    )


def shares_fixtures(item: pytest.Item) -> bool:
    return any(scope in SHARED_SCOPES for _, scope in _fixture_scopes(item))


def _module_uses_simulator(module: ModuleType | None) -> bool:
    if module is None:
        return False
    for name in SIMULATOR_NAMES:
        value = getattr(module, name, None)
        if value is not None and getattr(value, "__module__", "").startswith(SIMULATOR_PACKAGE):
            return True
    return False


def _fixture_scopes(item: pytest.Item) -> Iterable[tuple[str, str]]:
    # Every fixture the test uses, requested or autouse, directly or through another fixture.
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return ()
    return [(name, definitions[-1].scope) for name, definitions in info.name2fixturedefs.items() if definitions]


def _start_order(group: str | None, slow: object | None) -> int:
    # The longest chain first; the quick single tests last, where they fill the gaps.
    if group == SIMULATOR_GROUP:
        return 0
    if group is not None:
        return 1
    return 2 if slow is not None else 3
