"""Random values drawn in blocks and handed out one at a time, so a stream's k-th value is
the same whatever else the run draws, and a draw costs a list pop, not a numpy call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lbsim.workload import BLOCK


class Draws:
    """Values of ``draw(n)``, drawn ``BLOCK`` at a time."""

    __slots__ = ("_buffer", "_draw")

    def __init__(self, draw: Callable[[int], Any]) -> None:
        self._draw = draw
        self._buffer: list[Any] = []

    def next(self) -> Any:
        """The next value."""
        if not self._buffer:
            block = self._draw(BLOCK)
            self._buffer = block.tolist() if isinstance(block, np.ndarray) else list(block)
            self._buffer.reverse()
        return self._buffer.pop()


class UniformDraws(Draws):
    """Uniform numbers in [0, 1) from ``rng``, drawn in blocks so each costs O(1)."""

    __slots__ = ()

    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng.random)
