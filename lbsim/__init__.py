"""lbsim: a discrete-event load-balancing simulator.

Load a scenario, simulate one run or sweep a grid of policies and parameters, and read the
latency, error-rate and utilization tables::

    import lbsim
    scenario = lbsim.load_scenario("scenarios/quickstart.yaml")
    result = lbsim.simulate(scenario, seed=1)
    summary = lbsim.sweep(scenario, jobs=2)
"""

from __future__ import annotations

import importlib
import sys

if sys.argv[:1] == ["-m"]:
    # `python -m lbsim` is starting: Python imports this package, then finds and compiles
    # lbsim/__main__.py before any of it runs; a Ctrl-C in between must not be a traceback.
    from lbsim import startup

    startup.guard()

# Not typing's: `python -m lbsim` imports this module before lbsim can catch a Ctrl-C, so it
# imports nothing that takes time (typing alone takes milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lbsim.config import Scenario, expand, load_scenario
    from lbsim.errors import ConfigError, LbsimError, SimulationError, UnknownNameError
    from lbsim.policies import POLICIES, Backend, Policy, make_policy
    from lbsim.runner import SimulationResult, SweepResult, run_sweep, simulate, sweep

# The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.2.0"

# The policies (numpy), the scenario schema (pydantic) and the runner (pandas) take longer to
# import than `lbsim --help` may take to answer, so their names are loaded when first used:
# `import lbsim` itself takes well under a millisecond (and the `lbsim` command can catch a Ctrl-C while
# it imports the rest).
_LAZY = {
    **dict.fromkeys(("ConfigError", "LbsimError", "SimulationError", "UnknownNameError"), "lbsim.errors"),
    **dict.fromkeys(("POLICIES", "Backend", "Policy", "make_policy"), "lbsim.policies"),
    "Scenario": "lbsim.config",
    "expand": "lbsim.config",
    "load_scenario": "lbsim.config",
    **dict.fromkeys(("SimulationResult", "SweepResult", "run_sweep", "simulate", "sweep"), "lbsim.runner"),
}

__all__ = [
    "Backend",
    "ConfigError",
    "LbsimError",
    "POLICIES",
    "Policy",
    "Scenario",
    "SimulationError",
    "SimulationResult",
    "SweepResult",
    "UnknownNameError",
    "__version__",
    "expand",
    "load_scenario",
    "make_policy",
    "run_sweep",
    "simulate",
    "sweep",
]


def __getattr__(name: str) -> Any:
    """Load a name of :mod:`lbsim.policies`, :mod:`lbsim.config` or :mod:`lbsim.runner` on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lbsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, the lazy ones among them before they are loaded (for tab completion)."""
    return sorted({*globals(), *_LAZY})
