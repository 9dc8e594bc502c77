"""The one retry policy of the remote layer.

Retried: no HTTP answer at all (:class:`~satchel.errors.TransportError`:
connect errors, resets, timeouts), 5xx (500, 502, 503 — ERMrest's
"Transaction aborted." serialization failure —, 504), 408 and 429; a
``Retry-After`` header is honoured (capped). Delays grow exponentially with
full jitter up to a cap. Only requests the caller declares *idempotent* are
ever repeated: GET, HEAD, PUT of content-named objects, chunk PUTs,
``onconflict=skip`` inserts and attributegroup PUTs.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from satchel import errors

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; the defaults suit a real server."""

    attempts: int = 6  # total tries, including the first
    base_delay: float = 0.5  # seconds before the first retry (before jitter)
    max_delay: float = 30.0  # cap of one backoff step
    max_retry_after: float = 120.0  # cap of a server's Retry-After
    deadline: float | None = 600.0  # give up once this many seconds have passed in total
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    @classmethod
    def none(cls) -> "RetryPolicy":
        return cls(attempts=1)

    def retryable(self, error: errors.RemoteError) -> bool:
        if isinstance(error, errors.TransportError):
            return True
        return isinstance(error, errors.RemoteStatusError) and error.status in RETRY_STATUSES

    def backoff(self, attempt: int, error: errors.RemoteError | None = None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        server_hint = getattr(error, "retry_after", None)
        if server_hint is not None:
            return min(server_hint, self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.rng.uniform(0, ceiling)

    def call(self, fn: Callable[[], T], *, idempotent: bool, what: str = "request") -> T:
        """Run ``fn``; repeat it on retryable errors when ``idempotent``."""
        start = time.monotonic()
        attempt = 1
        while True:
            try:
                return fn()
            except errors.RemoteError as error:
                # a refused connection is retried once (a server restarting), not for the whole backoff
                limit = min(self.attempts, 2) if getattr(error, "refused", False) else self.attempts
                if not idempotent or not self.retryable(error) or attempt >= limit:
                    if attempt > 1:
                        error.args = (f"{error.args[0]} (gave up after {attempt} attempts)", *error.args[1:])
                    raise
                delay = self.backoff(attempt, error)
                if self.deadline is not None and time.monotonic() - start + delay > self.deadline:
                    error.args = (f"{error.args[0]} (gave up: retry deadline of {self.deadline:g} s)",
                                  *error.args[1:])
                    raise
                log.info("retrying %s in %.2fs after attempt %d: %s", what, delay, attempt, error)
                self.sleep(delay)
                attempt += 1
