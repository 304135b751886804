"""lbsim's 95% intervals cover the true value about 95% of the time (a quick version of
`lbsim coverage`, whose full run is in the README)."""

import math

import pytest

from lbsim.limits import PILOT_REPLICATIONS
from lbsim.tools.coverage import SYSTEMS, coverage, precision_coverage, wilson

pytestmark = pytest.mark.slow


def test_wilson_interval_by_hand():
    # 190 of 200, z = 1.96: centre (0.95 + 1.96^2 / 400) / (1 + 1.96^2 / 200) = 0.94152,
    # half-width 1.96 x sqrt(0.95 x 0.05 / 200 + 1.96^2 / 160000) / 1.019208 = 0.03110.
    low, high = wilson(190, 200, 1.96)
    assert (low, high) == pytest.approx((0.94152 - 0.03110, 0.94152 + 0.03110), abs=1e-4)


def test_the_theory_values_are_the_textbook_ones():
    mean, p99, mm2 = (system.theory for system in SYSTEMS)
    assert mean == pytest.approx(0.020)  # 1 / (mu - lambda) = 1 / 50
    assert p99 == pytest.approx(math.log(100) / 50)  # exponential response time
    assert mm2 == pytest.approx(0.010 + (1 / 3) / 100)  # Erlang C(2, 1) = 1/3, wait C / (2 mu - lambda)


def test_intervals_cover_at_their_nominal_level():
    rows = coverage(experiments=300, replications=3, requests=2000, precision=False)
    # --precision 5% on the M/M/1 mean: the sequential procedure from 10 replications.
    rows.append(precision_coverage(SYSTEMS[0], 0.05, experiments=300, requests=2000))
    assert rows[-1].replications > PILOT_REPLICATIONS
    for row in rows:
        # The coverage's 99.9% Wilson interval must hold 95% (a miss by chance: 0.1%).
        low, high = wilson(row.covered, row.experiments, 3.2905)
        assert low <= 0.95 <= high, (row.system, row.metric, row.coverage)


def test_the_command_writes_its_table_and_a_verdict(tmp_path):
    from click.testing import CliRunner

    from lbsim.cli import main

    out = tmp_path / "coverage"
    args = ["coverage", "--experiments", "20", "--requests", "500", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 1), result.output
    text = (out / "coverage.md").read_text()
    assert text.count("| 20 x 3 x 500 |") == 3 and text.count("| 20 x 1 x 5,000 |") == 1
    assert "| M/M/1 load 0.5, --precision 5% | latency_mean |" in text
    assert "| M/M/1 load 0.5, --precision 5% | latency_p99 |" in text and "x 2,500 |" in text
    verdict = text.strip().splitlines()[-1]
    covering = int(verdict.split()[0])
    assert verdict.startswith(f"{covering} of 6 cover at 95%") and result.exit_code == (covering < 6)


def test_a_study_above_the_request_budget_is_refused(tmp_path):
    from click.testing import CliRunner

    from lbsim.cli import main

    result = CliRunner().invoke(
        main, ["coverage", "--replications", "100", "--requests", "100000", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: coverage must simulate at most 1e+09 requests")
