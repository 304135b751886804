"""The scenario file: its schema by section, loading, ``--set`` overrides, the sweep grid and
the messages for bad input. Nothing here runs a simulation.

``load_scenario`` reads and checks a file (``loading``) into a :class:`Scenario`
(``scenario``), made of its sections: ``workload``, ``servers``, ``balancer`` (and tiers),
``faults``, ``geography`` (regions, network, DNS) and ``expect``, all built on ``base``.
``overrides`` is the key-path language of ``--set``, ``sweep`` the grid of cells, and
``messages`` turns a schema error into one line.
"""

from lbsim.config.loading import load_scenario
from lbsim.config.scenario import Scenario
from lbsim.config.sweep import Cell, expand

__all__ = ["Cell", "Scenario", "expand", "load_scenario"]
