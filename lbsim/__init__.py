"""lbsim: a discrete-event load-balancing simulator.

Load a scenario, simulate one run or sweep a grid of policies and parameters, and read the
latency, error-rate and utilization tables::

    import lbsim
    scenario = lbsim.load_scenario("scenarios/quickstart.yaml")
    result = lbsim.simulate(scenario, seed=1)
    summary = lbsim.sweep(scenario, jobs=2)
"""

from lbsim.errors import ConfigError, LbsimError, SimulationError, UnknownNameError
from lbsim.policies import POLICIES, Backend, Policy, make_policy
from lbsim.runner import SimulationResult, SweepResult, run_sweep, simulate, sweep
from lbsim.scenario import Scenario, expand, load_scenario

__version__ = "0.2.0"

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
