"""Which tests may run side by side on pytest-xdist's workers (`--dist loadgroup`).

Registered by tests/conftest.py, so a new test module is placed without anyone remembering to:
- a group per booted platform: every module that uses a platform booted on the simulator once
  per session (a session fixture named `*_platform`: `aws_platform`, `gcp_platform`) runs on
  the worker that boots it, one after another (group `simulator:aws_platform`, ...). Each
  platform is per worker process, so its users must share one; two platforms are independent
  (each simulator names its namespaces after its process and keeps its networks, bridge and
  nft rules inside them; tests/test_simulator_concurrent.py), so the AWS and the GCP chains
  run on two workers at once.
- every module that boots machines in the simulator itself (it imports the simulator or its
  availability check) is placed like any other module (below). With the platforms' modules
  they carry the `simulator` mark, so `-m "not simulator"` selects the rest. (A module that
  boots the simulator through a helper imports `simulator_unavailable` for its skip, or uses
  a `*_platform` fixture.)
- a group per module for a module whose tests share a module-, package- or class-scoped
  fixture (a running hub, a moto server): split over two workers, each would start its own.
- every other test is scheduled on its own.

Under xdist the platform chains are put first, so each starts at once on a worker of its own
while the others take the rest: whole modules, then `slow` and simulator single tests, then
the quick ones. Within a chain, the modules using a `*_tiny` fixture come last, one after
another, so the tiny environments are applied once and never reverted (scripts/test.sh
passes `--no-loadscope-reorder` to keep that order). Without xdist (`-n 0`, `-p no:xdist`)
the marks are inert and the order is the collection order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType

import pytest

PLATFORM_GROUP_PREFIX = "simulator:"
ONE_CHAIN_GROUP = "simulator"  # --simulator-chains one: every simulator test on one worker
# A test module that refers to any of these boots machines in the simulator.
SIMULATOR_NAMES = ("Simulator", "GceSimulator", "simulator_unavailable")
SIMULATOR_PACKAGE = "tests.support.simulator"
PLATFORM_SUFFIX = "_platform"
# A module fixture on a platform that the chain's next module takes over as it is (the tiny
# environments of tests/support/cloud_fixtures.py): its modules run last in their chain.
HANDED_OVER_SUFFIX = "_tiny"
SHARED_SCOPES = ("class", "module", "package")


@dataclass
class ModulePlacement:
    """What a test module's tests need of the workers."""

    platforms: set[str] = field(default_factory=set)  # the session `*_platform` fixtures it uses
    simulator: bool = False  # boots machines in the simulator (itself or on a platform)
    shares: bool = False  # a class/module/package fixture
    hands_over: bool = False  # a `*_tiny` module fixture, kept applied from one module to the next

    @property
    def group(self) -> str | None:
        if self.platforms:
            return PLATFORM_GROUP_PREFIX + "+".join(sorted(self.platforms))
        return None

    def group_of(self, module: str, one_chain: bool = False) -> str | None:
        if one_chain and self.simulator:
            return ONE_CHAIN_GROUP
        return self.group or (module if self.shares else None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--simulator-chains", choices=("split", "one"), default="split",
                     help="split (default): a worker per simulated platform, the other simulator modules placed "
                          "like any; one: every simulator test on one worker, one after another (the layout "
                          "before the split: the benchmark's baseline, and a fallback)")
    parser.addoption("--tiny-handover", choices=("on", "off"), default="on",
                     help="on (default): a platform chain's modules with tiny environments run last and hand them "
                          "over (tests/support/handover.py); off: each module applies and reverts its own, in "
                          "collection order (the layout before: the benchmark's baseline)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "simulator: boots machines in the machine simulator")
    # Registered by xdist itself too; here so `-p no:xdist` still passes --strict-markers.
    config.addinivalue_line("markers", "xdist_group(name): run the tests of the group on one xdist worker")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups and `-m` deselects by mark
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    placements = module_placements(items)
    one_chain = config.getoption("simulator_chains", default="split") == "one"
    if config.getoption("tiny_handover", default="on") == "off":
        for placement in placements.values():
            placement.hands_over = False
    for item in items:
        module = module_id(item)
        placement = placements[module]
        if placement.simulator:
            item.add_marker(pytest.mark.simulator)
        group = placement.group_of(module, one_chain)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    if config.getoption("loadgroup", default=False):
        # Stable: within a module, the tests keep their order.
        items.sort(key=lambda item: _start_order(placements[module_id(item)], item, one_chain))


def module_placements(items: Iterable[pytest.Item]) -> dict[str, ModulePlacement]:
    """How each test module must be placed, by module id (its path)."""
    placements: dict[str, ModulePlacement] = {}
    for item in items:
        placement = placements.setdefault(module_id(item), ModulePlacement())
        scopes = list(_fixture_scopes(item))
        platforms = {name for name, scope in scopes if name.endswith(PLATFORM_SUFFIX) and scope == "session"}
        placement.platforms |= platforms
        placement.simulator |= bool(platforms) or _module_uses_simulator(getattr(item, "module", None))
        placement.shares |= any(scope in SHARED_SCOPES for _, scope in scopes)
        placement.hands_over |= any(name.endswith(HANDED_OVER_SUFFIX) and scope == "module" for name, scope in scopes)
    return placements


def module_id(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


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


def _start_order(placement: ModulePlacement, item: pytest.Item, one_chain: bool) -> tuple[int, int]:
    # The longest chains first; the quick single tests last, where they fill the gaps.
    # Within a chain, the modules that hand their tiny environments over run last, together.
    if placement.platforms or (one_chain and placement.simulator):
        return 0, int(placement.hands_over)
    if placement.shares:
        return 1, 0
    return (2 if placement.simulator or item.get_closest_marker("slow") is not None else 3), 0
