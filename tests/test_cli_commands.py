"""The CLI imports only the module of the command it runs (`validate` is on the path of
every pull request, so it must not pay for every other command's imports), which relies
on `cmd_<name>.py` registering the subcommand `<name>`."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys

from deploy import cli
from deploy.cli.main import build_parser
from tests.conftest import REPO


def _commands(parser) -> set[str]:
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return set(action.choices)


def test_each_command_module_registers_its_namesake() -> None:
    modules = {m.name.removeprefix("cmd_") for m in pkgutil.iter_modules(cli.__path__) if m.name.startswith("cmd_")}
    assert _commands(build_parser()) == modules
    for name in modules:
        assert _commands(build_parser(name)) == {name}
    assert _commands(build_parser("no-such-command")) == modules  # argparse then lists every choice


def test_validate_imports_no_other_command() -> None:
    code = (
        "import sys; from deploy.cli.main import main; main(['validate', 'platform.yaml']); "
        "print(sorted(m for m in sys.modules if m.startswith('deploy.cli.cmd_')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "['deploy.cli.cmd_validate']"
