from __future__ import annotations

import random

import pytest

from satchel import errors
from satchel.remote.retry import RetryPolicy


def policy(**kw):
    slept = []
    p = RetryPolicy(attempts=4, base_delay=1.0, max_delay=5.0, max_retry_after=10, deadline=None,
                    sleep=slept.append, rng=random.Random(1), **kw)
    return p, slept


def failing(errs, result="ok"):
    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= len(errs):
            raise errs[len(calls) - 1]
        return result

    return fn, calls


def status(code, retry_after=None):
    e = errors.RemoteStatusError(f"status {code}", status=code)
    e.retry_after = retry_after
    return e


def test_retries_transient_errors_of_idempotent_calls():
    p, slept = policy()
    fn, calls = failing([errors.TransportError("reset"), status(503), status(429)])
    assert p.call(fn, idempotent=True) == "ok"
    assert len(calls) == 4 and len(slept) == 3


def test_never_retries_non_idempotent_or_permanent():
    p, slept = policy()
    fn, calls = failing([status(503)])
    with pytest.raises(errors.RemoteStatusError):
        p.call(fn, idempotent=False)
    assert len(calls) == 1
    fn, calls = failing([errors.Conflict("dup", status=409)])
    with pytest.raises(errors.Conflict):
        p.call(fn, idempotent=True)
    assert len(calls) == 1 and slept == []


def test_gives_up_with_a_reason():
    p, _ = policy()
    fn, calls = failing([errors.TransportError("down")] * 10)
    with pytest.raises(errors.TransportError, match="gave up after 4 attempts"):
        p.call(fn, idempotent=True)
    assert len(calls) == 4


def test_backoff_is_capped_exponential_with_jitter_and_honours_retry_after():
    p, _ = policy()
    for attempt in range(1, 10):
        assert 0 <= p.backoff(attempt) <= min(5.0, 2 ** (attempt - 1))
    assert p.backoff(1, status(429, retry_after=7)) == 7
    assert p.backoff(1, status(429, retry_after=100)) == 10


def test_deadline():
    p = RetryPolicy(attempts=50, base_delay=1, max_delay=1, deadline=0.5, sleep=lambda s: None,
                    rng=random.Random(0))
    fn, _ = failing([status(503, retry_after=1)] * 50)
    with pytest.raises(errors.RemoteStatusError, match="deadline"):
        p.call(fn, idempotent=True)
