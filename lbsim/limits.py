"""Bounds on what a scenario may ask for, so that a typo (``replications: 1e9``, a server
count of 2^63) is refused in one line instead of exhausting memory."""

MAX_REPLICATIONS = 100_000
# Each cell of a sweep is checked as a whole scenario (about a millisecond), and each run
# keeps its tables until the sweep is assembled.
MAX_CELLS = 10_000
MAX_RUNS = 1_000_000
MAX_INSTANCES = 10_000
MAX_SERVERS_PER_GROUP = 1_000_000
# Client numbers are kept as 32-bit integers.
MAX_CLIENTS = 2**31 - 1
# Each core of a balancer instance is modelled one by one.
MAX_CORES = 1024
