"""The local target: the real hub and gateway supervised on this machine."""
