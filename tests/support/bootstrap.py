"""The platform bootstrap tests share: the repo's platform.yaml for a target, and its
rendered bootstrap stack (tests/test_bootstrap*.py)."""

from __future__ import annotations

import json
from pathlib import Path

from render.bootstrap import render_bootstrap
from render.validate import validate_text

ROOT = Path(__file__).resolve().parent.parent.parent
NAME = "oceanlab"
BUCKET = f"{NAME}-tfstate"
REPO = "oceanlab/platform"
SUB = "token.actions.githubusercontent.com:sub"


def config(target: str = "aws", runner: str = "github-hosted") -> str:
    text = (ROOT / "platform.yaml").read_text().replace("target: local", f"target: {target}")
    return text.replace("    zones: 2 ", "    zones: 1 ").replace("runner: github-hosted", f"runner: {runner}")


def stack(target: str, runner: str = "github-hosted") -> dict:
    files = render_bootstrap(validate_text(config(target, runner)), target)
    return json.loads(files[f"bootstrap/{target}/main.tf.json"])
