"""Building blocks that render composes: cloud constructs, hub and gateway config pieces."""

import os

# jsii prints a Node end-of-life banner when cdktf is first imported unless told which
# majors are fine. Set here, before any submodule (every construct module imports cdktf).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20,21,22")
