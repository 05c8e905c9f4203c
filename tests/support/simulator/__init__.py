"""The machine simulator: EC2 instances from moto booted as sandboxes on this machine.

See simulator.py for the entry point and the README's tests section for what differs
from a real VM.
"""

from tests.support.simulator.capacity import CapacityProxy
from tests.support.simulator.simulator import Simulator, SimulatorError, missing_prerequisites

__all__ = ["CapacityProxy", "Simulator", "SimulatorError", "missing_prerequisites"]
