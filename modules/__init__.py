"""Building blocks that render composes: cloud constructs, hub and gateway config pieces."""
