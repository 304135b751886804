"""lbsim.tools.theory against published values and hand computations."""

import math

import numpy as np
import pytest

from lbsim.tools import theory


def test_erlang_c_for_ten_servers_at_nine_erlangs():
    # Published: C(10, 9) = 0.6687 (Erlang C tables, e.g. Kleinrock I).
    assert theory.erlang_c(10, 9.0) == pytest.approx(0.6687, abs=5e-5)


def test_erlang_b_for_ten_servers_at_eight_erlangs():
    # Published Erlang B table: B(10, 8) = 0.1217.
    assert theory.erlang_b(10, 8.0) == pytest.approx(0.1217, abs=5e-5)


def test_erlang_c_is_stable_for_a_thousand_servers():
    value = theory.erlang_c(1000, 990.0)
    assert 0 < value < 1
    assert theory.mmc_response_mean(1000, 990.0, 1.0) > 1.0


def test_round_robin_over_ten_at_load_point_nine_is_e10_m_1():
    # The value: E_10/M/1 at load 0.9 has mean response 5.660 / mu.
    assert theory.round_robin_response_mean(10, 9.0, 1.0) == pytest.approx(5.660, abs=5e-4)
    # With one server, round robin is plain M/M/1.
    assert theory.round_robin_response_mean(1, 0.5, 1.0) == pytest.approx(2.0)


def test_power_of_two_at_load_point_nine():
    # The value: 2.614 / mu in the mean-field limit; fractions 0.9, 0.729, 0.4783.
    assert theory.power_of_d_response_mean(0.9, 2) == pytest.approx(2.614, abs=5e-4)
    assert [theory.power_of_d_fraction(0.9, 2, i) for i in (1, 2, 3)] == pytest.approx([0.9, 0.729, 0.9**7])


def test_mm1_mean_quantile_and_waiting():
    assert theory.mm1_response_mean(70, 100) == pytest.approx(1 / 30)
    assert theory.mm1_response_quantile(70, 100, 0.99) == pytest.approx(math.log(100) / 30)
    assert theory.mm1_wait_probability(70, 100) == pytest.approx(0.7)


def test_mm1k_by_hand():
    # K = 5, rho = 0.9: (1 - 0.9) 0.9^5 / (1 - 0.9^6) = 0.059049 / 0.468559 = 0.126022.
    assert theory.mm1k_blocking(0.9, 1.0, 5) == pytest.approx(0.126022, abs=1e-6)
    assert theory.mm1k_blocking(1.0, 1.0, 4) == pytest.approx(1 / 5)
    assert theory.mm1k_throughput(0.9, 1.0, 5) == pytest.approx(0.9 * (1 - 0.126022), abs=1e-6)
    # A large K approaches M/M/1.
    assert theory.mm1k_response_mean(0.5, 1.0, 200) == pytest.approx(theory.mm1_response_mean(0.5, 1.0))
    # K = 1 (no waiting room): an admitted request is served at once, mean 1 / mu.
    assert theory.mm1k_response_mean(0.7, 1.0, 1) == pytest.approx(1.0)


def test_pollaczek_khinchine_and_processor_sharing():
    # M/D/1 at 0.7 with E[S] = 10 ms: 10 ms + 0.7 x 1 x 10 ms / (2 x 0.3) = 21.667 ms.
    assert theory.mg1_response_mean(70, 0.01, 0.0) == pytest.approx(0.021667, abs=1e-6)
    assert theory.mg1_response_mean(70, 0.01, 1.0) == pytest.approx(theory.mm1_response_mean(70, 100))
    assert theory.mg1_ps_response_mean(70, 0.01) == pytest.approx(0.01 / 0.3)


def test_laws():
    assert theory.response_time_law(50, 40.0, 1.0) == pytest.approx(0.25)
    assert theory.availability(100, 10) == pytest.approx(100 / 110)
    assert theory.random_dispatch_response_mean(10, 900, 100) == pytest.approx(0.1)


def test_mmc_response_tail_by_hand_and_against_its_mean():
    # M/M/2, lambda = mu = 1: C = 1/3 and theta = mu, so P(T > t) = (2/3 + (1 + t) / 3) e^-t.
    assert theory.mmc_response_tail(2, 1.0, 1.0, 2.0) == pytest.approx(5 / 3 * math.exp(-2))
    # The tail integrates to the Erlang C mean (M/M/3, lambda 2, mu 1).
    t = np.linspace(0, 60, 6_001)
    tail = np.array([theory.mmc_response_tail(3, 2.0, 1.0, x) for x in t])
    assert np.trapezoid(tail, t) == pytest.approx(theory.mmc_response_mean(3, 2.0, 1.0), rel=1e-4)


def test_mmc_response_quantile_reduces_to_mm1_and_inverts_the_tail():
    assert theory.mmc_response_quantile(1, 80.0, 100.0, 0.99) == pytest.approx(math.log(100) / 20, rel=1e-9)
    q = theory.mmc_response_quantile(4, 3.0, 1.0, 0.99)
    assert theory.mmc_response_tail(4, 3.0, 1.0, q) == pytest.approx(0.01, rel=1e-9)
