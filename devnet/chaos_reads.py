"""The chaos tool's own reads of the nodes' APIs, patient under load (issue 12).

A 200-round kill-primary soak died after about 43 rounds because one of the tool's
reads got no answer within 10 s at load average 30-50, and the tool took that as
fatal. Here a read that gets no answer (a node killed, cut off, or only slow) is
tried again with exponential back-off until its budget, the scenario's recovery
bound, is spent. Only then does it raise ``NoAnswerError``, which the tool records as
a violation of the run; it never ends the run with a traceback.

An *answer* is anything the node said on purpose (a 404 for an unknown tx, say);
only silence, a refused connection, a busy 429/503 or a 5xx are retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from client.sdk import Client, RetryPolicy, VeilApiError
from devnet.network import Devnet

T = TypeVar("T")
ATTEMPT_TIMEOUT_S = 10.0
POLL_TIMEOUT_S = 3.0
"""For reads in a polling loop that tries again by itself (heights, convergence)."""


class NoAnswerError(Exception):
    """No node asked gave an answer within the budget; the message says who, what, how long."""

    def __init__(self, nodes: Sequence[int], what: str, waited_s: float, last_error: str) -> None:
        who = f"node {nodes[0]}" if len(nodes) == 1 else f"nodes {list(nodes)}"
        super().__init__(f"{who}: no answer to {what} within {waited_s:.1f} s ({last_error})")
        self.nodes = tuple(nodes)
        self.what = what
        self.waited_s = waited_s


def is_silence(error: VeilApiError) -> bool:
    """True when the node did not answer on purpose: worth asking again."""
    return error.status is None or error.status in (429, 503) or error.status >= 500


@dataclass(frozen=True, slots=True)
class Reads:
    """How the tool reads ``devnet``'s nodes: each attempt bounded by ``attempt_timeout_s``,
    retried (back-off ``first_delay_s`` doubling up to ``max_delay_s``) for ``budget_s``."""

    devnet: Devnet
    budget_s: float
    attempt_timeout_s: float = ATTEMPT_TIMEOUT_S
    first_delay_s: float = 0.2
    max_delay_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def client(self, index: int, timeout_s: float | None = None) -> Client:
        """A client of node ``index`` that tries once (the retrying is done here)."""
        timeout = self.attempt_timeout_s if timeout_s is None else timeout_s
        return Client(self.devnet.url(index), timeout_s=timeout, retry=RetryPolicy(attempts=1))

    def from_node(
        self, index: int, what: str, read: Callable[[Client], T], budget_s: float | None = None
    ) -> T:
        """``read`` against node ``index`` until it answers; ``NoAnswerError`` after the budget."""
        return self.first_answer([index], what, read, budget_s)

    def first_answer(
        self,
        nodes: Sequence[int],
        what: str,
        read: Callable[[Client], T],
        budget_s: float | None = None,
    ) -> T:
        """``read`` against ``nodes`` in turn until one answers; ``NoAnswerError`` after it."""
        budget = self.budget_s if budget_s is None else budget_s
        started_s = self.clock()
        last_error = "not asked"
        attempt = 0
        while True:
            for index in nodes:
                try:
                    return read(self.client(index))
                except VeilApiError as exc:
                    if not is_silence(exc):
                        raise
                    last_error = str(exc)
                except OSError as exc:  # a reset in the middle of reading the body
                    last_error = f"{type(exc).__name__}: {exc}"
            waited_s = self.clock() - started_s
            delay_s = min(self.max_delay_s, self.first_delay_s * 2.0**attempt)
            if waited_s + delay_s > budget:
                raise NoAnswerError(nodes, what, waited_s, last_error)
            self.sleep(delay_s)
            attempt += 1
