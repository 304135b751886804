"""Every distribution knows its exact mean and cv; samples must agree with them."""

import math

import numpy as np
import pytest

from lbsim.distributions import Empirical, parse_distribution
from lbsim.errors import ConfigError, UnknownNameError

CASES = [
    # spelling, exact mean, exact cv (computed by hand from the parameters)
    ("exp(20ms)", 0.02, 1.0),
    ("det(20ms)", 0.02, 0.0),
    ("uniform(5ms, 15ms)", 0.01, (0.01 / math.sqrt(12)) / 0.01),
    ("lognormal(mean=20ms, cv=2)", 0.02, 2.0),
    ("gamma(mean=20ms, cv=0.5)", 0.02, 0.5),
    ("hyperexp(mean=20ms, cv=3)", 0.02, 3.0),
    ("pareto(mean=20ms, alpha=5)", 0.02, 1 / math.sqrt(5 * 3)),
    ("pareto(min=1ms, max=1s, alpha=1.5)", None, None),
    (
        "weibull(mean=20ms, shape=0.7)",
        0.02,
        math.sqrt(math.gamma(1 + 2 / 0.7) / math.gamma(1 + 1 / 0.7) ** 2 - 1),
    ),
]


@pytest.mark.parametrize(("text", "mean", "cv"), CASES)
def test_exact_moments_match_the_formula(text, mean, cv):
    d = parse_distribution(text)
    if mean is None:
        # Bounded Pareto B(L, H, a): E[X] = a L^a (H^(1-a) - L^(1-a)) / ((1 - a)(1 - (L/H)^a)).
        lo, hi, a = 0.001, 1.0, 1.5
        mean = a * lo**a * (hi ** (1 - a) - lo ** (1 - a)) / ((1 - a) * (1 - (lo / hi) ** a))
        second = a * lo**a * (hi ** (2 - a) - lo ** (2 - a)) / ((2 - a) * (1 - (lo / hi) ** a))
        cv = math.sqrt(second / mean**2 - 1)
    assert d.mean == pytest.approx(mean, rel=1e-12)
    assert d.cv == pytest.approx(cv, rel=1e-12)


@pytest.mark.parametrize(("text", "mean", "cv"), CASES)
def test_sample_mean_and_cv_agree_with_exact_values(text, mean, cv):
    d = parse_distribution(text)
    x = d.sample(np.random.default_rng(2024), 2_000_000)
    # Standard error of the mean is cv / sqrt(n) relative; 5 of them is a safe bound.
    assert x.mean() == pytest.approx(d.mean, rel=5 * max(d.cv, 0.01) / math.sqrt(x.size) + 1e-12)
    # The sample cv of heavy tails converges slowly; 3% is enough to catch a wrong formula.
    assert x.std() / x.mean() == pytest.approx(d.cv, rel=0.03, abs=1e-12)


def test_unbounded_pareto_with_small_alpha_has_infinite_cv():
    assert parse_distribution("pareto(mean=20ms, alpha=1.5)").cv == math.inf


def test_str_is_the_scenario_spelling():
    for text in ["exp(20ms)", "lognormal(mean=20ms, cv=2)", "uniform(5ms, 15ms)"]:
        assert str(parse_distribution(text)) == text


def test_empirical_reads_a_file(tmp_path):
    path = tmp_path / "sizes.csv"
    path.write_text("size\n0.01\n0.03\n")
    d = parse_distribution("empirical(sizes.csv)", tmp_path)
    assert isinstance(d, Empirical)
    assert d.mean == pytest.approx(0.02)
    assert d.cv == pytest.approx(0.5)
    assert set(d.sample(np.random.default_rng(0), 100)) == {0.01, 0.03}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("expo(20ms)", "unknown distribution 'expo'. Did you mean 'exp'?"),
        ("lognormal(mean=20ms)", "argument 'cv' must be given"),
        ("lognormal(mean=20ms, sigma=2)", "unknown argument of lognormal() 'sigma'"),
        ("exp(-1s)", "mean must be a finite number > 0"),
        ("hyperexp(mean=1s, cv=0.5)", "cv must be >= 1"),
        ("20ms", "must be a distribution such as 'exp(20ms)'"),
        ("pareto(mean=1s, alpha=0.9)", "alpha must be > 1"),
        ("empirical(missing.csv)", "file must be a readable file"),
    ],
)
def test_bad_spellings_say_what_is_wrong(text, message):
    with pytest.raises(ConfigError) as info:
        parse_distribution(text)
    assert message in str(info.value)
    if "unknown distribution" in message:
        assert isinstance(info.value, UnknownNameError)
