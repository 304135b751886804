"""Envoy's priority loads and panic, against the vectors of Envoy's own tests.

From test/common/upstream/load_balancer_impl_test.cc (Envoy 1.28-1.32), LoadBalancerBaseTest
OverProvisioningFactor, GentleFailover and GentleFailoverWithExtraLevels: the cases without
degraded or excluded hosts (lbsim has neither), as (hosts, healthy) per level, the loads and
panic flags Envoy asserts, at the default panic threshold of 50%.
"""

import pytest

from lbsim.engine.priority import priority_loads

ENVOY_VECTORS = [
    # OverProvisioningFactor: 1.4 makes P0 receive 70%.
    ([(4, 2), (4, 2)], [70, 30], None),
    # GentleFailover
    ([(1, 1), (1, 1)], [100, 0], [False, False]),
    ([(2, 1), (2, 1)], [70, 30], [False, False]),
    ([(4, 1), (2, 2)], [35, 65], [False, False]),
    ([(4, 1), (4, 1)], [50, 50], [True, True]),
    # GentleFailoverWithExtraLevels
    ([(1, 1), (1, 1), (1, 1)], [100, 0, 0], [False, False, False]),
    ([(2, 1), (2, 1), (2, 1)], [70, 30, 0], None),
    ([(4, 1), (2, 2), (2, 1)], [35, 65, 0], None),
    ([(4, 1), (4, 1), (4, 1)], [35, 35, 30], None),
    ([(5, 1), (5, 1), (5, 1)], [34, 33, 33], [True, True, True]),
    ([(5, 0), (5, 0), (5, 5)], [0, 0, 100], [False, False, False]),
    ([(5, 0), (5, 0), (5, 4)], [0, 0, 100], [False, False, False]),
    ([(5, 0), (5, 0), (5, 2)], [34, 33, 33], [True, True, True]),
    ([(5, 0), (3, 0), (2, 0)], [50, 30, 20], [True, True, True]),
    ([(5, 0), (6, 2), (3, 1)], [37, 42, 21], [True, True, True]),
    ([(3, 0), (3, 0), (3, 0)], [34, 33, 33], [True, True, True]),
    ([(0, 0), (6, 0), (3, 0)], [0, 67, 33], [True, True, True]),
]


@pytest.mark.parametrize(("levels", "loads", "panic"), ENVOY_VECTORS)
def test_priority_loads_match_envoys_tests(levels, loads, panic):
    got_loads, got_panic = priority_loads([h for _, h in levels], [n for n, _ in levels], 50)
    assert got_loads == loads
    if panic is not None:
        assert got_panic == panic


def test_one_healthy_primary_of_four_with_two_healthy_backups_does_not_panic():
    # The case: 35 + 100 >= 100, so neither level panics and the backups take 65%.
    assert priority_loads([1, 2], [4, 2], 50) == ([35, 65], [False, False])


def test_no_healthy_host_and_no_panic_sends_everything_to_level_0():
    # recalculatePerPriorityPanic: threshold 0 and normalized availability 0: P=0 gets 100.
    assert priority_loads([0, 0], [4, 2], 0) == ([100, 0], [False, False])
