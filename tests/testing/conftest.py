"""Fixtures for the emulator's own tests: raw httpx clients per user."""

from __future__ import annotations

import httpx
import pytest

from satchel.testing.pytest_plugin import deriva_server  # noqa: F401

CAT = "/ermrest/catalog/1"


def _client(server, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=10)


@pytest.fixture
def writer(deriva_server):
    with _client(deriva_server, deriva_server.token) as c:
        yield c


@pytest.fixture
def admin(deriva_server):
    with _client(deriva_server, deriva_server.admin_token) as c:
        yield c


@pytest.fixture
def reader(deriva_server):
    with _client(deriva_server, deriva_server.reader_token) as c:
        yield c


@pytest.fixture
def anon(deriva_server):
    with _client(deriva_server, None) as c:
        yield c
