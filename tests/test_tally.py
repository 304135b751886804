"""The tally's session count against a plain walk through the requests in the order they ended."""

import numpy as np
import pytest

from lbsim.results.recorder import COLUMN_TYPES, Records
from lbsim.results.tally import Tally, _stable_order
from lbsim.status import NO_BACKEND, OK


def records(session, server, t_arrival):
    n = len(session)
    status = np.where(np.asarray(server) >= 0, OK, NO_BACKEND)
    columns = (t_arrival, t_arrival, t_arrival + 1, np.ones(n), server, status, np.zeros(n), session)
    return Records(*(np.asarray(c).astype(t) for c, t in zip(columns, COLUMN_TYPES, strict=True)))


# Session numbers are client x sessions + k: up to about 2**62, which key x n would overflow.
@pytest.mark.parametrize("scale", [1, 2**50])
def test_session_moves_follow_each_session_across_chunks(scale):
    rng = np.random.default_rng(7)
    n, warmup = 5_000, 0.2
    # New sessions keep appearing, so later chunks bring sessions no earlier one had.
    session = np.array([rng.integers(0, k // 10 + 1) for k in range(n)]) * scale
    server = rng.integers(-1, 4, n)  # -1: no server chosen
    t_arrival = rng.random(n)
    last: dict[int, int] = {}
    follows = moves = 0
    for s, b, t in zip(session.tolist(), server.tolist(), t_arrival.tolist(), strict=True):
        if b < 0:
            continue
        if s in last and t >= warmup:
            follows += 1
            moves += last[s] != b
        last[s] = b
    tally = Tally(warmup, 1.0, 1.0, 1, 4, per_server_windows=False, keep_failures=False)
    for chunk in np.split(np.arange(n), [1, 8, 508, 3000]):
        tally.fold(records(session[chunk], server[chunk], t_arrival[chunk]))
    assert (tally.n_follows, tally.n_moves) == (follows, moves)
    assert moves > 0 and follows > moves


@pytest.mark.parametrize("high", [3, 2**62])
def test_stable_order_is_numpys_stable_argsort(high):
    keys = np.random.default_rng(3).integers(0, high, 4096)
    assert np.array_equal(_stable_order(keys), np.argsort(keys, kind="stable"))
    assert _stable_order(keys[:0]).size == 0
