"""Every plot takes the tidy tables and returns Axes, without showing or writing anything."""

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes

import lbsim
from lbsim.output import plots
from tests.helpers import make_scenario


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


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
    assert isinstance(plots.plot_utilization(result.servers[result.servers["workload.rate"] == 30]), Axes)
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
    assert list(lines["random"].get_ydata()) == pytest.approx([90, 50, 20])  # busiest first, in %
    assert list(lines["p2c"].get_ydata()) == pytest.approx([60, 60, 30])
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
    made = dict(figures.result_plots(lbsim.run_sweep(scenario, jobs=1), tmp_path, 3.0))
    assert (
        made[f"Utilization of the {figures.PER_SERVER_PLOTS + 1} servers, busiest first"]
        == "plots/utilization.png"
    )
    assert "Traffic over time: the least loaded, median and most loaded server" in made
    assert "Utilization per server" not in made and "Traffic per server over time" not in made


def test_utilization_gets_a_panel_per_swept_value_not_a_mean_over_them():
    import pandas as pd

    servers = pd.DataFrame({
        "policy": ["rr"] * 4,
        "workload.rate": [100.0, 100.0, 400.0, 400.0],
        "server": ["a", "b"] * 2,
        "utilization": [0.2, 0.4, 0.8, 1.0],
    })  # fmt: skip
    axes = plots.plot_per_cell(plots.plot_utilization, servers, ["scenario", "policy", "workload.rate"])
    assert [ax.get_title() for ax in axes] == ["offered rate 100 requests/s", "offered rate 400 requests/s"]
    heights = [[bar.get_height() for bar in ax.patches] for ax in axes]
    assert heights == [pytest.approx([20, 40]), pytest.approx([80, 100])]  # not the means 50, 70
    assert axes[0].get_ylabel() == "utilization (%)"


def test_axes_say_what_they_show_in_words_and_units(result):
    ax = plots.plot_metric(result.table, "workload.rate", "latency_p99")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("offered rate (requests/s)", "p99 latency (ms)")
    p99 = result.table.sort_values("workload.rate").groupby("policy", sort=False)["latency_p99"].first()
    drawn = {line.get_label(): line.get_ydata()[0] for line in ax.get_lines()}
    assert drawn == {name: pytest.approx(1000 * value) for name, value in p99.items()}  # s to ms
    ax = plots.plot_metric(result.table, "workload.rate", "error_rate")
    assert ax.get_ylabel() == "error rate (%)"
    counts = result.table.assign(servers=result.table["workload.rate"] // 30)
    ax = plots.plot_metric(counts, "servers", "latency_p50")
    assert all(float(tick).is_integer() for tick in ax.get_xticks())  # whole servers only


def test_an_error_rate_of_zero_everywhere_says_so_instead_of_a_flat_line(result):
    table = result.table.assign(error_rate=0.0)
    ax = plots.plot_metric(table, "workload.rate", "error_rate")
    assert not ax.get_lines()
    assert [text.get_text() for text in ax.texts] == ["error rate 0 in every cell"]


def test_a_sweep_where_every_request_failed_draws_without_a_log_scale(result):
    import math

    table = result.table.assign(latency_p99=math.nan, latency_p99_ci=math.nan)
    ax = plots.plot_metric(table, "workload.rate", "latency_p99")
    ax.get_figure().canvas.draw()  # a log scale with no positive value raised here
    assert ax.get_yscale() == "linear"


def test_the_time_axis_ends_at_the_run_end_and_a_fault_past_it_is_cut_there(result):
    import math

    import pandas as pd

    forever = pd.DataFrame({"t_start": [2.0], "t_end": [math.inf]})
    ax = plots.plot_traffic(result.timeseries, keys=["policy", "workload.rate"], faults=forever, run_end=5.0)
    assert ax.get_xlim() == (0.0, 5.0)
    (span,) = ax.patches
    assert span.get_x() == 2.0 and span.get_width() == pytest.approx(3.0)
    first = result.timeseries.iloc[0]
    assert ax.get_title() == (
        f"policy {first['policy']}\noffered rate {first['workload.rate']:g} requests/s\nreplication 0"
    )


def test_bands_follow_the_reports_replication_rule_and_never_cross_zero():
    import numpy as np
    import pandas as pd

    table = pd.DataFrame({
        "policy": ["rr", "rr"], "workload.rate": [100.0, 200.0], "replications": [3, 3],
        "latency_p99": [0.1, 0.2], "latency_p99_ci": [0.05, 0.3],
        "error_rate": [0.01, 0.02], "error_rate_ci": [0.02, 0.01],
    })  # fmt: skip
    ax = plots.plot_metric(table, "workload.rate", "latency_p99")
    (band,) = ax.collections
    # 100 +- 50 ms, then 200 - 300 ms < 0: a gap on the log scale, not a band down to 0.
    low = [vertex[1] for vertex in band.get_paths()[0].vertices]
    assert min(low) == pytest.approx(50.0) and ax.get_yscale() == "log"
    ax = plots.plot_metric(table, "workload.rate", "error_rate")
    lows = np.concatenate([path.vertices[:, 1] for path in ax.collections[0].get_paths()])
    assert lows.min() == 0.0  # 1% - 2% is cut at 0%
    two = table.assign(replications=2)
    ax = plots.plot_metric(two, "workload.rate", "latency_p99")
    heights = np.concatenate([path.vertices[:, 1] for path in ax.collections[0].get_paths()])
    assert set(np.round(heights, 6)) <= {100.0, 200.0}  # no band below 3 replications


def test_the_latency_cdf_gets_a_panel_per_swept_value(result):
    axes = plots.plot_per_cell(plots.plot_latency_cdf, result.cdf, result.keys)
    assert [ax.get_title() for ax in axes] == ["offered rate 30 requests/s", "offered rate 60 requests/s"]
    assert all(len(ax.get_lines()) == 2 for ax in axes)  # random and least_connections in each
