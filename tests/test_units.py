import pytest

from lbsim.errors import ConfigError
from lbsim.units import format_duration, parse_duration, parse_rate


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250us", 250e-6),
        ("20ms", 0.02),
        ("2s", 2.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1.5", 1.5),
        (3, 3.0),
        # As people also write them.
        ("2min", 120.0),
        ("100 msec", 0.1),
        ("1.5 hours", 5400.0),
        ("3 sec", 3.0),
    ],
)
def test_durations_are_seconds(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("900/s", 900.0),
        ("900 / s", 900.0),
        ("54000/m", 900.0),
        ("3600/h", 1.0),
        ("12", 12.0),
        ("400rps", 400.0),
        ("400/sec", 400.0),
        ("60/min", 1.0),
        ("120 rpm", 2.0),
    ],
)
def test_rates_are_per_second(text, rate):
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("text", ["fast", "20 parsecs", "", True, None, "inf"])
def test_bad_durations_name_the_value(text):
    with pytest.raises(ConfigError, match="must be a"):
        parse_duration(text)


def test_bad_rate_names_the_value():
    with pytest.raises(ConfigError, match=r"must be a rate such as '900/s'.*got '9 per sec'"):
        parse_rate("9 per sec")


def test_format_duration_is_short():
    assert format_duration(0.02) == "20ms"
    assert format_duration(90.0) == "1.5m"


@pytest.mark.parametrize(
    ("metric", "text", "value"),
    [
        ("latency_p99", "100ms", 0.1),
        ("latency_mean", 0.25, 0.25),
        ("throughput", "400rps", 400.0),
        ("throughput", "400/sec", 400.0),
        ("error_rate", "1%", 0.01),
        ("availability", "99.9 %", 0.999),
        ("error_rate", 0.02, 0.02),
    ],
)
def test_a_metrics_threshold_is_read_in_its_units(metric, text, value):
    from lbsim.units import parse_threshold

    assert parse_threshold(metric, text) == pytest.approx(value)


def test_expectations_take_units_as_slos_do():
    import lbsim
    from tests.helpers import make_scenario

    expect = [
        {"metric": "latency_p99", "max": "100ms"},
        {"metric": "error_rate", "max": "1%"},
        {"metric": "throughput", "min": "90rps"},
        {"metric": "utilization_max", "within": "10%", "of": "50%"},
    ]
    scenario = lbsim.load_scenario(make_scenario(expect=expect))
    assert [(e.max, e.min, e.of) for e in scenario.expect] == [
        (pytest.approx(0.1), None, None),
        (pytest.approx(0.01), None, None),
        (None, pytest.approx(90.0), None),
        (None, None, pytest.approx(0.5)),
    ]
    with pytest.raises(ConfigError, match=r"expect\[0\].max must be a duration such as '20ms'.*; got '1%'"):
        lbsim.load_scenario(make_scenario(expect=[{"metric": "latency_p99", "max": "1%"}]))


def test_a_size_written_as_a_duration_suggests_a_fixed_size():
    from lbsim.distributions import parse_distribution

    with pytest.raises(ConfigError, match=r"got '10ms' \(a fixed size is det\(10ms\)\)\.$"):
        parse_distribution("10ms")
