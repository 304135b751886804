"""The protocol every stage of a balancer instance's request path shares.

An instance is a chain of stages built with only the mechanisms its scenario configures.
Going down, a stage takes an attempt in ``send`` and passes it on with ``forward``. Coming
back, a stage that cares about answers takes ``answer(attempt, index, status)`` (``index``:
the backend that answered, -1 for none) and passes it on with ``reply``; stages that do not
care are left out of the way back.
"""

from __future__ import annotations

from collections.abc import Callable

from lbsim.engine.messages import Attempt

Send = Callable[[Attempt], None]
Answer = Callable[[Attempt, int, int], None]


class Stage:
    """One step of the request path; ``forward`` and ``reply`` are bound when the chain is built."""

    forward: Send
    reply: Answer

    def send(self, attempt: Attempt) -> None:
        """Take ``attempt`` on its way to a backend."""
        self.forward(attempt)

    def answer(self, attempt: Attempt, index: int, status: int) -> None:
        """Take the answer to ``attempt`` on its way back to the client."""
        self.reply(attempt, index, status)
