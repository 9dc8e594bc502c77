"""Lost responses, connection resets and 5xx bursts on every kind of request a pull makes: the same mirror.

Each case pulls (metadata and a prefetch of every asset's bytes) through the fault proxy with one kind of
fault on one kind of request, pulling again until it reports success; the store must then hold exactly
what a pull with no fault leaves.
"""

from __future__ import annotations

import pytest
from syncsupport import FAULTS, make_remote, mirror_of, populate

from satchel import DerivaML
from satchel.testing import DerivaServer, FaultProxy

TARGETS = {
    "model": ("GET", "/schema"),
    "rows": ("GET", "/entity/"),
    "count": ("GET", "/aggregate/"),
    "bytes": ("GET", "/hatrac/"),
}

TABLES = ["Model", "Image", "Execution_Metadata"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One emulator for the module: pulls only read, so every case sees the same catalog."""
    with DerivaServer(tmp_path_factory.mktemp("deriva-emulator")) as server:
        yield server
        assert not server.errors, f"the emulator failed internally: {server.errors!r}"


@pytest.fixture(scope="module")
def expected(tmp_path_factory, server):
    """What a pull with no fault leaves, from a catalog another store pushed to."""
    with DerivaML("localhost", "1", working_dir=tmp_path_factory.mktemp("there")) as there, \
            make_remote(server.url, server.token) as remote:
        populate(there)
        assert there.push(remote=remote, chunked_threshold=64 * 1024, chunk_size=32 * 1024).ok
    with DerivaML("localhost", "1", working_dir=tmp_path_factory.mktemp("clean")) as clean, \
            make_remote(server.url, server.token) as remote:
        assert clean.pull(remote=remote, tables=TABLES).ok
        return mirror_of(clean)


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fault_on_every_kind_of_pull_request_gives_the_same_mirror(fault, target, expected, server, new_store):
    method, fragment = TARGETS[target]
    with FaultProxy(server.url, timeout=30) as proxy:
        FAULTS[fault](proxy, method, fragment)
        ml = new_store()
        with make_remote(proxy.url, server.token) as remote:
            for _ in range(4):
                result = ml.pull(remote=remote, tables=TABLES)
                if result.ok:
                    break
            assert result.ok, result.failed
        assert proxy.pending() == 0, "the fault was never triggered: the target does not match a request"
    assert mirror_of(ml) == expected
