"""streamer.sim: a deterministic ACE API simulator, and what any window of it must hold.

``run_simulator(config)`` serves it in the running event loop (tests); ``run_simulator_process``
serves it from a child process (benchmarks); ``expected(config, site, start_ms, end_ms)`` gives the
counts and checksums a correct pipeline ends with.
"""

from streamer.sim.config import FaultConfig, Gap, SimConfig
from streamer.sim.model import expected
from streamer.sim.process import run_simulator_process
from streamer.sim.server import SimServer, run_simulator

__all__ = [
    "FaultConfig",
    "Gap",
    "SimConfig",
    "SimServer",
    "expected",
    "run_simulator",
    "run_simulator_process",
]
