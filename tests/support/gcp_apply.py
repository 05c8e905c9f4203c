"""`platform apply` on gcp without Terraform (its Google provider is not mirrored here), for
tests/support/gcp_platform.py: run in the admin's checkout with the CLI's environment,

    python -m tests.support.gcp_apply terraform-outputs.json

it validates platform.yaml, renders build/, writes build/outputs.json from the outputs the
harness resolved from the fakes, and publishes the wheelhouse, the environments and the
configuration to the artifacts bucket with `deploy.cloud_ops`'s own code: what
`CloudTarget.apply` does once Terraform has applied.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from deploy import cloud_ops
from deploy.files import write_atomic
from render.validate import validate_text


def main(outputs_file: str) -> int:
    config = Path("platform.yaml").absolute()
    platform = validate_text(config.read_text())
    build = Path("build").absolute()
    cloud_ops.render_build(platform, build)
    outputs = json.loads(Path(outputs_file).read_text())
    write_atomic(build / cloud_ops.OUTPUTS, json.dumps(outputs, indent=2, sort_keys=True) + "\n")
    prepared = cloud_ops.Prepared(platform, build, cloud_ops.state_dir_of(platform, None), stack=None,
                                  config_path=config)
    published = cloud_ops.publish_hub(prepared, outputs, print)
    print(f"hub configuration {published.version[:12]} published" if published else "nothing published")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
