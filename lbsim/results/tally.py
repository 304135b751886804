"""Running totals of one run's request outcomes, folded in chunk by chunk.

The engine hands over its per-request records in chunks and drops them; what the tables
need (counts, latency histograms, per-server and per-window sums, each session's last
server) stays, so memory does not grow with the number of requests. Only requests that
failed are kept, and only when the scenario has faults (``faults.csv`` counts them).
"""

from __future__ import annotations

import numpy as np

from lbsim.results.histogram import LatencyHistogram
from lbsim.results.recorder import Records
from lbsim.status import OK, STATUSES


class Tally:
    """What the tables of one run need from its requests.

    Args:
        warmup: requests that arrived before this instant are not counted.
        duration: the end of the measured interval; ``ok`` requests that complete in
            [warmup, duration) make the throughput.
        window_length: width of a time-series window.
        n_windows: number of windows.
        n_servers: number of servers.
        per_server_windows: also count requests per server per window (runs whose servers
            are watched, for the traffic-per-server plot).
        keep_failures: keep the end instant, server and status of every failed request.
        regions: the region of every client and of every server, when the scenario has regions.
    """

    def __init__(
        self,
        warmup: float,
        duration: float,
        window_length: float,
        n_windows: int,
        n_servers: int,
        *,
        per_server_windows: bool,
        keep_failures: bool,
        regions: tuple[np.ndarray, np.ndarray, int] | None = None,
    ) -> None:
        self.warmup = warmup
        self.duration = duration
        self.window_length = window_length
        self.n_windows = n_windows
        self.n_servers = n_servers
        self.status_counts = np.zeros(len(STATUSES), dtype=np.int64)
        self.latency = LatencyHistogram()
        self.server_requests = np.zeros(n_servers, dtype=np.int64)
        self.server_ok = np.zeros(n_servers, dtype=np.int64)
        self.server_latency = np.zeros(n_servers)
        self.window_requests = np.zeros(n_windows, dtype=np.int64)
        # ok requests that completed in [warmup, duration), and in each window by completion.
        self.n_completed = 0
        self.window_completed = np.zeros(n_windows, dtype=np.int64)
        self.window_latency = LatencyHistogram(n_windows)
        self.window_served = np.zeros((n_windows, n_servers)) if per_server_windows else None
        self.sojourn = 0.0
        self.n_follows = 0
        self.n_moves = 0
        self.last_session = np.zeros(0, dtype=np.int64)
        self.last_server = np.zeros(0, dtype=np.int32)
        self.failures: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = [] if keep_failures else None
        self.regions = regions
        n_regions = regions[2] if regions else 0
        self.region_requests = np.zeros(n_regions, dtype=np.int64)
        self.region_latency = LatencyHistogram(max(n_regions, 1))
        self.region_elsewhere = np.zeros(n_regions, dtype=np.int64)
        self.region_served = np.zeros(n_regions, dtype=np.int64)
        self.window_region = np.zeros((n_windows, n_regions))

    def fold(self, records: Records) -> None:
        """Add one chunk of records."""
        inside = records.t_arrival >= self.warmup
        self.status_counts += np.bincount(records.status[inside], minlength=len(STATUSES))
        is_ok = records.status == OK
        ok = inside & is_ok
        latency = records.t_done[ok] - records.t_arrival[ok]
        self.latency.add(latency)
        served = inside & (records.server >= 0)
        n = self.n_servers
        self.server_requests += np.bincount(records.server[served], minlength=n)
        self.server_ok += np.bincount(records.server[ok], minlength=n)
        self.server_latency += np.bincount(records.server[ok], weights=latency, minlength=n)
        windows = self._window(records.t_arrival)
        self.window_requests += np.bincount(windows, minlength=self.n_windows)
        self.window_latency.add(records.t_done[is_ok] - records.t_arrival[is_ok], windows[is_ok])
        done = records.t_done[is_ok]
        done = done[done < self.duration]
        self.n_completed += int(np.count_nonzero(done >= self.warmup))
        self.window_completed += np.bincount(self._window(done), minlength=self.n_windows)
        if self.window_served is not None:
            anywhere = records.server >= 0
            self.window_served += self._per_window(windows[anywhere], records.server[anywhere], n)
        if self.regions is not None:
            self._fold_regions(records, inside, ok, latency, windows)
        self.sojourn += float(np.sum(records.t_done - records.t_arrival))
        self._fold_sessions(records)
        if self.failures is not None:
            failed = ~is_ok
            self.failures.append((records.t_done[failed], records.server[failed], records.status[failed]))

    def _window(self, t: np.ndarray) -> np.ndarray:
        """The time-series window of each instant in ``t`` (the last one takes the rest)."""
        return np.minimum(t * (1 / self.window_length), self.n_windows - 1).astype(np.int64)

    def _fold_regions(
        self, records: Records, inside: np.ndarray, ok: np.ndarray, latency: np.ndarray, windows: np.ndarray
    ) -> None:
        """Per client region: counted requests, latencies of the ok ones, and how many were
        served in another region; per window, requests served in each region."""
        assert self.regions is not None
        client_region, server_region, n = self.regions
        home = client_region[records.client]
        self.region_requests += np.bincount(home[inside], minlength=n)
        self.region_latency.add(latency, home[ok])
        served = inside & (records.server >= 0)
        where = server_region[records.server[served]]
        self.region_served += np.bincount(home[served], minlength=n)
        self.region_elsewhere += np.bincount(home[served][where != home[served]], minlength=n)
        anywhere = records.server >= 0
        self.window_region += self._per_window(windows[anywhere], server_region[records.server[anywhere]], n)

    def _per_window(self, windows: np.ndarray, columns: np.ndarray, n: int) -> np.ndarray:
        """Counts per window (rows) of each of ``n`` columns, for records in ``windows`` and ``columns``."""
        flat = windows * n + columns
        return np.bincount(flat, minlength=self.n_windows * n).reshape(self.n_windows, n)

    def _fold_sessions(self, records: Records) -> None:
        """Count counted requests that follow another of their session's, and those of them
        that went to another server than the session's previous request to end.

        Records come in the order requests ended, so a stable sort by session keeps that
        order within each session, and the first of a session in a chunk follows the last
        of the chunks before: the count does not depend on where chunks are cut.
        """
        served = records.server >= 0
        order = _stable_order(records.session[served])
        session = records.session[served][order]
        server = records.server[served][order]
        counted = records.t_arrival[served][order] >= self.warmup
        if session.size == 0:
            return
        first = np.ones(session.size, dtype=bool)
        first[1:] = session[1:] != session[:-1]
        previous = np.full(session.size, -1, dtype=np.int64)
        previous[1:] = server[:-1]
        firsts = session[first]
        # Each session's last server in this chunk (firsts and lasts are the same sorted sessions).
        last = np.ones(session.size, dtype=bool)
        last[:-1] = first[1:]
        lasts = server[last]
        where = np.searchsorted(self.last_session, firsts)
        if self.last_session.size:
            at = np.minimum(where, self.last_session.size - 1)
            seen = self.last_session[at] == firsts
            previous[first] = np.where(seen, self.last_server[at], -1)
            # Sessions seen before take their new last server where they are.
            self.last_server[at[seen]] = lasts[seen]
        else:
            seen = np.zeros(firsts.size, dtype=bool)
            previous[first] = -1
        follows = (previous >= 0) & counted
        self.n_follows += int(follows.sum())
        self.n_moves += int((server[follows] != previous[follows]).sum())
        # New sessions are inserted in order.
        new = ~seen
        self.last_session = np.insert(self.last_session, where[new], firsts[new])
        self.last_server = np.insert(self.last_server, where[new], lasts[new])

    def failed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """End instants, servers and statuses of the failed requests kept."""
        parts = self.failures or []
        return (
            np.concatenate([p[0] for p in parts]) if parts else np.zeros(0),
            np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.int32),
            np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, dtype=np.int8),
        )


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """The indices that sort the non-negative integers ``keys`` stably (equal keys keep their
    order), as ``np.argsort(keys, kind="stable")`` gives them. Where it cannot overflow, each
    key and its index make one unique key, key x n + index, which an unstable sort (several
    times faster than a stable one) puts in the same order."""
    n = keys.size
    if n == 0 or int(keys.max()) >= (np.iinfo(np.int64).max - n) // n:
        return np.argsort(keys, kind="stable")
    unique = keys.astype(np.int64) * n + np.arange(n)
    unique.sort()
    return unique % n
