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
