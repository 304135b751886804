"""Sweeps on a Dask cluster give the same results as serial runs."""

import sys

import pytest

import lbsim
from lbsim.errors import ConfigError
from tests.helpers import make_scenario

pytestmark = pytest.mark.slow

SCENARIO = make_scenario(
    duration=10.0,
    replications=2,
    workload={"arrivals": "poisson", "rate": 200, "size": "lognormal(mean=10ms, cv=2)"},
    servers=[{"name": "fast", "count": 2, "speed": 2, "weight": 2}, {"name": "slow", "count": 2}],
    sweep={"balancer.policy": ["random", "least_connections", "p2c"]},
)


def test_a_local_cluster_gives_byte_identical_summaries():
    serial = lbsim.sweep(SCENARIO, jobs=1)
    on_dask = lbsim.sweep(SCENARIO, scheduler="local")
    assert on_dask.to_csv(index=False) == serial.to_csv(index=False)


def test_without_dask_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ConfigError, match=r"pip install 'lbsim\[dask\]'"):
        lbsim.sweep(SCENARIO, scheduler="local")
