"""Every plot takes the tidy tables and returns Axes, without showing or writing anything."""

import pytest
from matplotlib.axes import Axes

import lbsim
from lbsim.output import plots
from tests.helpers import make_scenario


@pytest.fixture(scope="module")
def result():
    scenario = make_scenario(
        duration=5.0,
        replications=2,
        workload={"arrivals": "poisson", "rate": 50, "size": "exp(10ms)"},
        servers=[{"name": "web", "count": 3}],
        faults=[{"target": "web-0", "kind": "crash", "at": 1.0, "duration": 1.0}],
        sweep={"balancer.policy": ["random", "least_connections"], "workload.rate": [30, 60]},
    )
    return lbsim.run_sweep(scenario, jobs=1)


def test_each_plot_returns_axes(result):
    faults = result.faults.drop_duplicates(["target", "t_start"])
    assert isinstance(plots.plot_latency_cdf(result.cdf), Axes)
    assert isinstance(plots.plot_metric(result.table, "workload.rate", "latency_p99"), Axes)
    assert isinstance(plots.plot_metric_bars(result.table, "error_rate"), Axes)
    assert isinstance(plots.plot_utilization(result.servers), Axes)
    assert isinstance(plots.plot_timeseries(result.timeseries, "error_rate", faults=faults), Axes)
    assert isinstance(plots.plot_traffic(result.timeseries, faults=faults), Axes)
    panel = plots.plot_policy_panel(result.table, "workload.rate")
    assert len(panel) == 4 and all(isinstance(ax, Axes) for ax in panel)
    # The fault window is shaded on the time-series plots.
    ax = plots.plot_timeseries(result.timeseries, "error_rate", faults=faults)
    assert len(ax.patches) == 1
