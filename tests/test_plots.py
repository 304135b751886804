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


def test_large_fleets_get_the_spread_not_a_bar_or_line_per_server(result):
    import numpy as np
    import pandas as pd

    servers = pd.DataFrame({
        "policy": ["random"] * 3 + ["p2c"] * 3,
        "server": ["a", "b", "c"] * 2,
        "utilization": [0.2, 0.9, 0.5, 0.6, 0.6, 0.3],
    })  # fmt: skip
    ax = plots.plot_utilization_sorted(servers)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["random"].get_ydata()) == [0.9, 0.5, 0.2]  # busiest first
    assert list(lines["p2c"].get_ydata()) == [0.6, 0.6, 0.3]
    assert list(lines["random"].get_xdata()) == pytest.approx([1 / 6, 3 / 6, 5 / 6])
    timeseries = pd.DataFrame({"t_start": [0.0, 1.0], "served_a": [1.0, 4.0], "served_b": [3.0, 2.0],
                               "served_c": [2.0, 6.0]})  # fmt: skip
    ax = plots.plot_traffic_spread(timeseries)
    curves = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    assert curves == {
        "most loaded of 3 servers": [3.0, 6.0],
        "median of 3 servers": [2.0, 4.0],
        "least loaded of 3 servers": [1.0, 2.0],
    }
    assert np.isfinite(ax.get_xlim()).all()


def test_a_results_folder_for_a_large_fleet_draws_the_spread(tmp_path):
    from lbsim.output import figures

    scenario = make_scenario(
        duration=3.0,
        workload={"arrivals": "poisson", "rate": 500, "size": "exp(10ms)"},
        servers=[{"name": "web", "count": figures.PER_SERVER_PLOTS + 1}],
        faults=[{"target": "web-0", "kind": "crash", "at": 1.0, "duration": 1.0}],
    )
    made = dict(figures.result_plots(lbsim.run_sweep(scenario, jobs=1), tmp_path))
    assert (
        made[f"Utilization of the {figures.PER_SERVER_PLOTS + 1} servers, busiest first"]
        == "plots/utilization.png"
    )
    assert "Traffic over time: the least loaded, median and most loaded server" in made
    assert "Utilization per server" not in made and "Traffic per server over time" not in made
