"""Named, independent random streams derived from a scenario seed and a replication.

Every draw in a run comes from one of these streams, so adding a consumer of one stream
never shifts the numbers another stream produces (common random numbers across policies).
"""

from __future__ import annotations

import numpy as np

# Append new names at the end; reordering would change every existing result.
STREAM_NAMES: tuple[str, ...] = (
    "arrivals",
    "sizes",
    "attributes",
    "policy",
    "faults",
    "health",
    "network",
    "think",
    "sessions",
    "paths",
    "dns",
)


def stream(seed: int, replication: int, name: str) -> np.random.Generator:
    """Return the generator called ``name`` for one replication of a seeded scenario."""
    key = STREAM_NAMES.index(name)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(replication, key))))


def streams(seed: int, replication: int) -> dict[str, np.random.Generator]:
    """Return every named generator for one replication of a seeded scenario."""
    return {name: stream(seed, replication, name) for name in STREAM_NAMES}
