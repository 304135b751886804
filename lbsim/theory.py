"""Queueing-theory results the engine must reproduce; pure functions, no simpy.

Arguments are rates per second (``arrival_rate`` lambda, ``service_rate`` mu = 1 / mean
service time) and times in seconds. Each function names its formula and source.
"""

from __future__ import annotations

import math

from lbsim.errors import ConfigError


def _stable(load: float) -> None:
    if not 0 <= load < 1:
        raise ConfigError(f"load must be in [0, 1) for a stable queue; got {load!r}.")


def mm1_response_mean(arrival_rate: float, service_rate: float) -> float:
    """Mean response time of M/M/1: 1 / (mu - lambda) (Kleinrock, Queueing Systems I, 3.2)."""
    _stable(arrival_rate / service_rate)
    return 1 / (service_rate - arrival_rate)


def mm1_response_quantile(arrival_rate: float, service_rate: float, p: float) -> float:
    """p-quantile of M/M/1 FCFS response time, exponential with rate mu - lambda:
    -ln(1 - p) / (mu - lambda) (Kleinrock I, 3.2)."""
    _stable(arrival_rate / service_rate)
    return -math.log1p(-p) / (service_rate - arrival_rate)


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B blocking probability of M/M/c/c with offered load a = lambda / mu.

    Computed by the recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)), which never forms
    a factorial and is stable for thousands of servers. Insensitive to the service-time
    distribution beyond its mean (Sevastyanov).
    """
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    return blocking


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C probability that an arrival waits in M/M/c: C = c B / (c - a (1 - B)), B = Erlang B."""
    _stable(offered_load / servers)
    blocking = erlang_b(servers, offered_load)
    return servers * blocking / (servers - offered_load * (1 - blocking))


def mmc_response_mean(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean response time of M/M/c: C / (c mu - lambda) + 1 / mu (Kleinrock I, 3.5)."""
    waiting = erlang_c(servers, arrival_rate / service_rate) / (servers * service_rate - arrival_rate)
    return waiting + 1 / service_rate


def mg1_response_mean(arrival_rate: float, service_mean: float, service_cv: float) -> float:
    """Mean response time of M/G/1 FCFS by Pollaczek-Khinchine:
    E[S] + rho (1 + cv^2) E[S] / (2 (1 - rho)) (Kleinrock I, 5.7)."""
    load = arrival_rate * service_mean
    _stable(load)
    return service_mean + load * (1 + service_cv**2) * service_mean / (2 * (1 - load))


def mg1_ps_response_mean(arrival_rate: float, service_mean: float) -> float:
    """Mean response time of M/G/1 processor sharing: E[S] / (1 - rho), whatever the size
    distribution (Kleinrock, Queueing Systems II, 4.4)."""
    load = arrival_rate * service_mean
    _stable(load)
    return service_mean / (1 - load)
