"""Read back with deriva-py (the reference client) what satchel pushed: rows, tags, links and bytes."""

from __future__ import annotations

import hashlib
import os

import pytest
from syncsupport import random_bytes, record_run

deriva_core = pytest.importorskip("deriva.core")


@pytest.fixture(autouse=True)
def _no_ca_bundle(monkeypatch):
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)


def test_derivapy_sees_what_deriva_ml_would_have_written(new_store, remote, deriva_server, tmp_path):
    from deriva.core import DerivaServer, HatracStore

    ml = new_store()
    ml.add_term("Asset_Type", "Weights", description="weights")
    data = random_bytes(4096, 5)
    exe, rids = record_run(ml, {"w.bin": ("Model", data, ["Weights"])})
    assert ml.push(remote=remote).ok
    host = deriva_server.url.split("://", 1)[1]
    creds = deriva_server.credentials()
    catalog = DerivaServer("http", host, credentials=creds).connect_ermrest("1")
    pb = catalog.getPathBuilder()
    (row,) = pb.schemas["test-schema"].tables["Model"].entities().fetch()
    md5 = hashlib.md5(data).hexdigest()
    assert row["URL"] == f"/hatrac/Model/{md5}.w.bin" and row["MD5"] == md5 and row["Length"] == 4096
    types = {t["Asset_Type"] for t in pb.schemas["test-schema"].tables["Model_Asset_Type"].entities().fetch()}
    assert types == {"Weights", "Output_File"}
    (link,) = pb.schemas["test-schema"].tables["Model_Execution"].entities().fetch()
    assert (link["Model"], link["Asset_Role"]) == (row["RID"], "Output")
    (execution,) = pb.schemas["deriva-ml"].tables["Execution"].entities().fetch()
    assert link["Execution"] == execution["RID"] and execution["Status"] == "Uploaded"
    store = HatracStore("http", host, credentials=creds)
    out = tmp_path / "got.bin"
    store.get_obj(row["URL"], destfilename=str(out))
    assert out.read_bytes() == data
    assert os.path.getsize(out) == row["Length"]
