"""Lost responses, connection resets and 5xx bursts at every push step: the same exact outcome.

Each case injects one kind of fault on one kind of request (through the fault
proxy, over real loopback HTTP), pushes, and pushes again until the push
reports success (a fault the retry policy cannot absorb leaves items for the
next push, never a duplicate). Then the catalog must hold exactly what a clean
push would have written.
"""

from __future__ import annotations

import pytest
from syncsupport import FAULTS, check_catalog, make_remote, populate

#: (method, a fragment of the path) for each step's requests
TARGETS = {
    "lease": ("POST", "ERMrest_RID_Lease"),
    "terms": ("POST", "Asset_Type?"),
    "workflow": ("POST", "Workflow?"),
    "execution": ("POST", ":Execution?"),
    "object-head": ("HEAD", "/hatrac/"),
    "object-put": ("PUT", "/hatrac/Model/"),
    "chunk": ("PUT", ";upload/"),
    "finalize": ("POST", ";upload/"),
    "asset-row": ("POST", "test-schema:Model?"),
    "tags": ("POST", "Model_Asset_Type"),
    "links": ("POST", "Model_Execution"),
    "status": ("PUT", "attributegroup"),
    "read-back": ("GET", "/attribute/"),
}



@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fault_at_every_step_gives_the_same_catalog(fault, target, deriva_server, fault_proxy, new_store):
    ml = new_store()
    outputs = populate(ml)
    method, fragment = TARGETS[target]
    FAULTS[fault](fault_proxy, method, fragment)
    with make_remote(fault_proxy.url, deriva_server.token) as remote:
        results = []
        for _ in range(4):
            results.append(ml.push(remote=remote, chunked_threshold=64 * 1024, chunk_size=32 * 1024))
            if results[-1].ok and ml.sync_plan().empty:
                break
        assert results[-1].ok, [r.failed for r in results]
    assert fault_proxy.pending() == 0, "the fault was never triggered: the target does not match a request"
    with make_remote(deriva_server.url, deriva_server.token) as direct:
        check_catalog(direct, outputs)
