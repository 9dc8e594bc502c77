"""Fixtures for the remote layer's tests: clients on the emulator, directly or via the fault proxy."""

from __future__ import annotations

import random

import httpx
import pytest

from satchel.remote import Credential, Remote, RetryPolicy
from satchel.testing.pytest_plugin import deriva_server, fault_proxy  # noqa: F401

#: short backoff so fault tests stay fast; deterministic jitter
FAST_RETRY = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05, max_retry_after=0.2, deadline=10,
                         rng=random.Random(7))
FAST_TIMEOUT = httpx.Timeout(connect=2.0, read=2.0, write=2.0, pool=2.0)


def make_remote(url, token, **kw):
    options = {"credential": Credential.bearer(token), "retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
    options.update(kw)
    return Remote(url, **options)


@pytest.fixture
def remote_factory():
    """make_remote(url, token, **options) with fast test defaults; closed after the test."""
    made = []

    def factory(url, token, **kw):
        made.append(make_remote(url, token, **kw))
        return made[-1]

    yield factory
    for r in made:
        r.close()


@pytest.fixture
def remote(deriva_server):
    with make_remote(deriva_server.url, deriva_server.token) as r:
        yield r


@pytest.fixture
def proxied(deriva_server, fault_proxy):
    with make_remote(fault_proxy.url, deriva_server.token) as r:
        yield r
