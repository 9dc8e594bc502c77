"""pytest fixtures for testing against the DERIVA emulator.

Load it from your top-level ``conftest.py``::

    pytest_plugins = ["satchel.testing.pytest_plugin"]

Fixtures:

- ``deriva_server``: a fresh :class:`~satchel.testing.DerivaServer` per test,
  its state in the test's ``tmp_path``;
- ``shared_deriva_server``: one server for the whole session (faster; tests
  must not depend on a clean catalog);
- ``fault_proxy``: a :class:`~satchel.testing.FaultProxy` in front of
  ``deriva_server``.
"""

from __future__ import annotations

import pytest

from satchel.testing.proxy import FaultProxy
from satchel.testing.server import DerivaServer


@pytest.fixture
def deriva_server(tmp_path):
    with DerivaServer(tmp_path / "deriva-emulator") as server:
        yield server
        assert not server.errors, f"the emulator failed internally: {server.errors!r}"


@pytest.fixture(scope="session")
def shared_deriva_server(tmp_path_factory):
    with DerivaServer(tmp_path_factory.mktemp("deriva-emulator")) as server:
        yield server


@pytest.fixture
def fault_proxy(deriva_server):
    with FaultProxy(deriva_server.url, timeout=30) as proxy:
        yield proxy
