"""streamer.sim: a deterministic ACE API simulator, and what any window of it must hold.

``run_simulator(config)`` serves it in the running event loop (tests); ``run_simulator_process``
serves it from a child process (benchmarks); ``expected(config, site, start_ms, end_ms)`` gives the
counts and checksums a correct pipeline ends with. Names are imported on first use, so the CLI does
not pay for numpy and aiohttp before it needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamer.sim.config import FaultConfig, Gap, SimConfig
    from streamer.sim.model import expected
    from streamer.sim.process import run_simulator_process
    from streamer.sim.server import SimServer, run_simulator

_EXPORTS = {
    "FaultConfig": "streamer.sim.config",
    "Gap": "streamer.sim.config",
    "SimConfig": "streamer.sim.config",
    "SimServer": "streamer.sim.server",
    "expected": "streamer.sim.model",
    "run_simulator": "streamer.sim.server",
    "run_simulator_process": "streamer.sim.process",
}
__all__ = [
    "FaultConfig",
    "Gap",
    "SimConfig",
    "SimServer",
    "expected",
    "run_simulator",
    "run_simulator_process",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'streamer.sim' has no attribute {name!r}")
    return getattr(import_module(module), name)
