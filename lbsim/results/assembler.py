"""What one run produced, gathered while it runs and handed over when it ends.

The engine reports what happens: each request sent and ended (to the recorder, which folds
their outcomes into the tally in chunks and integrates the requests in the system over
time, for Little's law), the servers' load every window, their busy time at the start and
the end of the measured interval, and at the end the counters and logs of the run. The
assembler keeps these and builds the :class:`RunOutput` the result tables are made from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lbsim.results.recorder import Recorder
from lbsim.results.tally import Tally

# Server states in the time series (``state_<server>`` columns).
UP, CRASHED, HUNG, SLOW, ERRORING = range(5)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What the results need to know of one server: a member from ``t_join`` until
    ``t_leave`` (seconds; inf: never leaves)."""

    index: int
    name: str
    group: str
    workers: int
    t_join: float = 0.0
    t_leave: float = float("inf")


@dataclass(slots=True)
class Occurrence:
    """One fault occurrence: what failed (servers, or one balancer instance), how, and when."""

    target: str
    kind: str
    servers: tuple[str, ...]
    t_start: float
    t_end: float
    # The tier and number of the balancer instance that failed (None for servers).
    instance: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class RunOutput:
    """Everything one run produced: the tally of its requests, busy times, samples of server load.

    ``balancer_busy_time`` holds each balancer instance's busy core-seconds after warm-up
    and ``balancer_cores`` its cores (empty when the balancer costs nothing).
    """

    tally: Tally
    servers: tuple[ServerInfo, ...]
    regions: tuple[str, ...]
    busy_time: np.ndarray
    balancer_busy_time: np.ndarray
    balancer_cores: np.ndarray
    balancer_tiers: tuple[str, ...]
    n_arrived: int
    t_end: float
    sample_times: np.ndarray
    active_samples: np.ndarray
    state_samples: np.ndarray | None
    eligible_samples: np.ndarray | None
    n_retries: int
    n_hedges: int
    cross_zone: float
    retry_log: list[tuple[float, int]]
    events: list[tuple[float, str, str, str]]
    occurrences: list[Occurrence]
    in_system_time: float


class RunAssembler:
    """Collects one run's samples and busy times; ``recorder`` takes its requests.

    Args:
        servers: the run's servers, in index order.
        sample_times: the instants (seconds) at which server load is sampled.
        watched: whether to sample server states and eligibility too (runs with faults or
            health checks).
        recorder: where the engine reports requests sent and ended.
    """

    def __init__(
        self, servers: Sequence[ServerInfo], sample_times: np.ndarray, watched: bool, recorder: Recorder
    ) -> None:
        self.servers = tuple(servers)
        self.recorder = recorder
        self.sample_times = sample_times
        shape = (sample_times.size, len(self.servers))
        self.active_samples = np.zeros(shape, dtype=np.int32)
        self.state_samples = np.zeros(shape, dtype=np.int8) if watched else None
        self.eligible_samples = np.zeros(shape, dtype=np.int8) if watched else None
        self.n_samples = 0
        self.busy_start: np.ndarray | None = None
        self.busy_end: np.ndarray | None = None

    @property
    def watched(self) -> bool:
        """Whether server states and eligibility are sampled too."""
        return self.state_samples is not None

    def sample(
        self, active: list[int], states: list[int] | None = None, eligible: list[bool] | None = None
    ) -> float | None:
        """Record the servers' requests in system (and, when :attr:`watched`, their fault
        states and eligibility) now; return the instant of the next sample (None after the last)."""
        k = self.n_samples
        self.active_samples[k] = active
        if self.state_samples is not None and self.eligible_samples is not None:
            assert states is not None and eligible is not None
            self.state_samples[k] = states
            self.eligible_samples[k] = eligible
        self.n_samples += 1
        return float(self.sample_times[self.n_samples]) if self.n_samples < self.sample_times.size else None

    def output(
        self,
        t_end: float,
        busy_cores: np.ndarray,
        balancer_tiers: Sequence[str],
        regions: Sequence[str],
        n_retries: int,
        n_hedges: int,
        cross_zone: float,
        retry_log: list[tuple[float, int]],
        events: list[tuple[float, str, str, str]],
        occurrences: list[Occurrence],
    ) -> RunOutput:
        """The run's output once it ended at ``t_end``; ``busy_cores`` holds each balancer
        instance's cores (in the order of the busy times after the servers')."""
        recorder = self.recorder
        recorder.end()
        # Both are taken before a run can end: at the warm-up and at the duration.
        assert self.busy_start is not None and self.busy_end is not None
        busy = self.busy_end - self.busy_start
        n = len(self.servers)
        return RunOutput(
            tally=recorder.tally,
            servers=self.servers,
            regions=tuple(regions),
            busy_time=busy[:n],
            balancer_busy_time=busy[n:],
            balancer_cores=busy_cores,
            balancer_tiers=tuple(balancer_tiers),
            n_arrived=recorder.n_arrived,
            t_end=t_end,
            sample_times=self.sample_times,
            active_samples=self.active_samples,
            state_samples=self.state_samples,
            eligible_samples=self.eligible_samples,
            n_retries=n_retries,
            n_hedges=n_hedges,
            cross_zone=cross_zone,
            retry_log=retry_log,
            events=events,
            occurrences=occurrences,
            in_system_time=recorder.in_system_until(t_end),
        )
