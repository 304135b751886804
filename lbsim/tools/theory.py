"""Queueing-theory results the engine must reproduce; pure functions, no simpy.

Arguments are rates per second (``arrival_rate`` lambda, ``service_rate`` mu = 1 / mean
service time) and times in seconds. Each function names its formula and source.
"""

from __future__ import annotations

import math

from lbsim.errors import ConfigError, shown


def _stable(load: float) -> None:
    if not 0 <= load < 1:
        raise ConfigError(f"load must be in [0, 1) for a stable queue; got {shown(load)}.")


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


def mmc_response_tail(servers: int, arrival_rate: float, service_rate: float, t: float) -> float:
    """P(T > t) of the M/M/c FCFS response time T = W + S: with probability 1 - C no wait,
    otherwise an exponential wait of rate theta = c mu - lambda, so
    P(T > t) = (1 - C) e^(-mu t) + C (theta e^(-mu t) - mu e^(-theta t)) / (theta - mu)
    (Gross and Harris, Fundamentals of Queueing Theory, 2.3; the limit theta -> mu is
    (1 + mu t) e^(-mu t)). For c = 1 it reduces to e^(-(mu - lambda) t)."""
    waits = erlang_c(servers, arrival_rate / service_rate)
    theta, mu = servers * service_rate - arrival_rate, service_rate
    if math.isclose(theta, mu, rel_tol=1e-9):
        queued = (1 + mu * t) * math.exp(-mu * t)
    else:
        queued = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
    return (1 - waits) * math.exp(-mu * t) + waits * queued


def mmc_response_quantile(servers: int, arrival_rate: float, service_rate: float, p: float) -> float:
    """p-quantile of the M/M/c FCFS response time: the t with P(T > t) = 1 - p, found by
    bisection on :func:`mmc_response_tail` (decreasing in t) to a relative 1e-12."""
    low, high = 0.0, 1 / service_rate
    while mmc_response_tail(servers, arrival_rate, service_rate, high) > 1 - p:
        low, high = high, 2 * high
    while high - low > 1e-12 * high:
        middle = (low + high) / 2
        if mmc_response_tail(servers, arrival_rate, service_rate, middle) > 1 - p:
            low = middle
        else:
            high = middle
    return high


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


def mm1_wait_probability(arrival_rate: float, service_rate: float) -> float:
    """Probability that an M/M/1 arrival waits: rho (PASTA)."""
    load = arrival_rate / service_rate
    _stable(load)
    return load


def mm1k_blocking(arrival_rate: float, service_rate: float, capacity: int) -> float:
    """Blocking probability of M/M/1/K (K = capacity, in service plus waiting):
    (1 - rho) rho^K / (1 - rho^(K+1)), or 1 / (K + 1) at rho = 1 (Kleinrock I, 3.6)."""
    load = arrival_rate / service_rate
    if math.isclose(load, 1.0):
        return 1 / (capacity + 1)
    return (1 - load) * load**capacity / (1 - load ** (capacity + 1))


def mm1k_throughput(arrival_rate: float, service_rate: float, capacity: int) -> float:
    """Throughput of M/M/1/K: lambda (1 - P_block)."""
    return arrival_rate * (1 - mm1k_blocking(arrival_rate, service_rate, capacity))


def mm1k_response_mean(arrival_rate: float, service_rate: float, capacity: int) -> float:
    """Mean response time of admitted M/M/1/K requests: L / throughput (Little), with
    L = rho / (1 - rho) - (K + 1) rho^(K+1) / (1 - rho^(K+1)), or K / 2 at rho = 1."""
    load = arrival_rate / service_rate
    k = capacity
    if math.isclose(load, 1.0):
        number = k / 2
    else:
        number = load / (1 - load) - (k + 1) * load ** (k + 1) / (1 - load ** (k + 1))
    return number / mm1k_throughput(arrival_rate, service_rate, capacity)


def round_robin_response_mean(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean response time at one of ``servers`` exponential servers fed in round robin from a
    Poisson stream of total rate ``arrival_rate``: each server is an E_N/M/1 queue (every N-th
    arrival), a G/M/1 queue with mean response 1 / (mu (1 - sigma)), where sigma in (0, 1) solves
    sigma = (N lambda / (N lambda + mu (1 - sigma)))^N with lambda the per-server rate
    (Kleinrock I, 6.4). Solved by fixed-point iteration, which converges from 0."""
    _stable(arrival_rate / servers / service_rate)
    sigma = 0.0
    for _ in range(100_000):
        following = (arrival_rate / (arrival_rate + service_rate * (1 - sigma))) ** servers
        if abs(following - sigma) < 1e-14:
            break
        sigma = following
    return 1 / (service_rate * (1 - sigma))


def random_dispatch_response_mean(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean response time with uniform random dispatch: N independent M/M/1 queues at rate lambda / N."""
    return mm1_response_mean(arrival_rate / servers, service_rate)


def power_of_d_fraction(load: float, choices: int, at_least: int) -> float:
    """Mean-field fraction of servers with at least ``at_least`` requests under power of d
    choices: load^((d^i - 1) / (d - 1)) (Mitzenmacher 2001; Vvedenskaya, Dobrushin,
    Karpelevich 1996)."""
    return float(load ** ((choices**at_least - 1) / (choices - 1)))


def power_of_d_response_mean(load: float, choices: int, service_rate: float = 1.0) -> float:
    """Mean-field mean response time under power of d choices: (1 / lambda) sum_i s_i, in units
    of 1 / mu (Little's law over the mean queue length sum_i s_i)."""
    _stable(load)
    total, i = 0.0, 1
    while True:
        term = power_of_d_fraction(load, choices, i)
        total += term
        if term < 1e-15:
            break
        i += 1
    return total / load / service_rate


def response_time_law(users: int, throughput: float, think_mean: float) -> float:
    """Interactive response-time law of a closed system: R = N / X - Z (Denning and Buzen)."""
    return users / throughput - think_mean


def availability(mtbf: float, mttr: float) -> float:
    """Long-run fraction of time a server with alternating up and repair times is up:
    mtbf / (mtbf + mttr) (renewal-reward theorem)."""
    return mtbf / (mtbf + mttr)
