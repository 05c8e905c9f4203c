"""The machine simulator: moto's instances booted for real in sandboxes (see simulator.py).

Needs root, `ip`, `unshare`, `nsenter`, `nft` and `debootstrap` (for the cached root).
"""

from .simulator import Simulator as Simulator
from .support import simulator_unavailable as simulator_unavailable
