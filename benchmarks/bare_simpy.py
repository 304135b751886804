"""A bare SimPy model of the benchmark system, written the way SimPy's own examples are.

10 identical single-worker FCFS servers (simpy.Resource), Poisson arrivals at 90% load,
exponential sizes with mean 10 ms, random dispatch; prints the mean and p99 latency.
Random numbers are drawn ahead in numpy arrays, as lbsim does, so the comparison is of
the simulation itself.

Usage: python benchmarks/bare_simpy.py [N_REQUESTS]
"""

import sys

import numpy as np
import simpy

SERVERS = 10
MEAN_SIZE = 0.010
RATE = 0.9 * SERVERS / MEAN_SIZE


def main(n: int) -> None:
    rng = np.random.default_rng(1)
    gaps = rng.exponential(1 / RATE, n).tolist()
    sizes = rng.exponential(MEAN_SIZE, n).tolist()
    targets = rng.integers(0, SERVERS, n).tolist()
    env = simpy.Environment()
    servers = [simpy.Resource(env, capacity=1) for _ in range(SERVERS)]
    latencies: list[float] = []

    def request(server: simpy.Resource, size: float):
        t_arrival = env.now
        with server.request() as slot:
            yield slot
            yield env.timeout(size)
        latencies.append(env.now - t_arrival)

    def source():
        for gap, size, target in zip(gaps, sizes, targets, strict=True):
            yield env.timeout(gap)
            env.process(request(servers[target], size))

    env.process(source())
    env.run()
    latency = np.array(latencies)
    print(f"requests={latency.size} mean={latency.mean():.5f} p99={np.percentile(latency, 99):.5f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
