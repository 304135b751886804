"""The clock: open-loop arrivals run at the instants and in the order that scheduling each
from the one before would give, ties with scheduled events included."""

import numpy as np

from lbsim.engine.clock import Clock

# 3.5633645491586514 - 0.9014274576114836 rounds: adding it back gives 3.563364549158652.
ROUNDING = (0.9014274576114836, 3.5633645491586514)


def test_rounding_example_rounds() -> None:
    a, t = ROUNDING
    assert (t - a) + a != t  # the premise of the next test


def run_arrivals(blocks: list[list[float]]) -> list[tuple[float, int]]:
    """(clock time, arrival number) of each arrival of ``blocks``."""
    clock = Clock()
    seen: list[tuple[float, int]] = []
    numbers = iter(range(sum(len(b) for b in blocks)))
    clock.arrivals(
        ((np.array(b), (next(numbers) for _ in b)) for b in blocks), lambda k: seen.append((clock.now, k))
    )
    clock.schedule(10.0, lambda _: clock.stop())
    clock.run()
    return seen


def test_arrivals_run_when_scheduling_each_from_the_one_before_would_run_them() -> None:
    blocks = [[0.25, *ROUNDING], [4.0, 4.5], [9.0, 9.75]]
    expected, now = [], 0.0
    for t in [t for block in blocks for t in block]:
        now = now + (t - now)  # schedule(t - now) at the arrival before, as SimPy adds it
        expected.append(now)
    seen = run_arrivals(blocks)
    assert [k for _, k in seen] == list(range(7))
    assert [t for t, _ in seen] == expected
    assert seen[2][0] == 3.563364549158652  # not the drawn time: the rounding is kept


def test_an_arrival_ties_with_events_in_the_order_they_were_scheduled() -> None:
    # Arrival 0 is numbered when arrivals() is called, before the event scheduled after it,
    # so it runs first at t=1. Arrival 1 (t=2) is numbered when arrival 0 runs, before
    # arrival 0's callback schedules its event for t=2, so arrival 1 runs first at t=2.
    clock = Clock()
    order: list[str] = []

    def arrive(name: str) -> None:
        order.append(name)
        if name == "arrival 0":
            clock.schedule(1.0, order.append, "event from arrival 0")

    clock.arrivals(iter([(np.array([1.0, 2.0]), iter(["arrival 0", "arrival 1"]))]), arrive)
    clock.schedule(1.0, order.append, "event scheduled after arrivals()")
    clock.schedule(5.0, lambda _: clock.stop())
    clock.run()
    assert order == ["arrival 0", "event scheduled after arrivals()", "arrival 1", "event from arrival 0"]
