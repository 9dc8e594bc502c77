"""deriva-py, unmodified, against the emulator (bearer token and webauthn cookie)."""

from __future__ import annotations

import os

import pytest

deriva_core = pytest.importorskip("deriva.core")
from deriva.core import ErmrestCatalog, HatracStore  # noqa: E402


def bindings(server, kind):
    # deriva-py scopes a cookie to the host name unless the name has no dot; for an
    # IP with a port that never matches, so cookie users address the emulator as localhost
    host = server.host if kind == "bearer" else server.host.replace("127.0.0.1", "localhost")
    creds = server.credentials(kind=kind)
    return ErmrestCatalog("http", host, server.catalog_id, credentials=creds), HatracStore("http", host, creds)


@pytest.mark.parametrize("kind", ["bearer", "cookie"])
def test_catalog_model_insert_and_select(deriva_server, kind):
    catalog, _ = bindings(deriva_server, kind)
    try:
        assert catalog.get_authn_session().json()["client"]["id"] == "writer"
        model = catalog.getCatalogModel()
        image = model.schemas["test-schema"].tables["Image"]
        assert {c.name for c in image.columns} >= {"URL", "Filename", "Length", "MD5"}
        assert len(model.schemas["deriva-ml"].tables["Asset_Type"].foreign_keys) == 2  # RCB, RMB
        pb = catalog.getPathBuilder()
        table = pb.schemas["test-schema"].tables["Image"]
        rows = [{"URL": f"/hatrac/Image/{i}", "Length": i, "MD5": f"{i:032x}"} for i in range(3)]
        inserted = list(table.insert(rows))
        assert len(inserted) == 3 and all(r["RID"] for r in inserted)
        fetched = list(table.filter(table.Length >= 1).entities().fetch())
        assert sorted(r["Length"] for r in fetched) == [1, 2]
        again = list(table.insert(rows, on_conflict_skip=True))
        assert again == []
        table.update([{"RID": inserted[0]["RID"], "Description": "changed"}])
        assert list(table.filter(table.RID == inserted[0]["RID"]).entities().fetch())[0]["Description"] == "changed"
    finally:
        catalog._session.close()


@pytest.mark.parametrize("kind", ["bearer", "cookie"])
def test_hatrac_put_obj_put_loc_get_obj(deriva_server, tmp_path, kind):
    _, store = bindings(deriva_server, kind)
    try:
        src = tmp_path / "data.bin"
        src.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
        loc = store.put_obj("/hatrac/Image/data.bin", str(src))
        before = deriva_server.stats.requests("PUT", "hatrac.object")
        assert store.put_obj("/hatrac/Image/data.bin", str(src)) == loc  # skipped: MD5 matches
        assert deriva_server.stats.requests("PUT", "hatrac.object") == before
        chunked = store.put_loc("/hatrac/Image/chunked.bin", str(src), chunked=True, chunk_size=1024 * 1024)
        assert chunked.startswith("/hatrac/Image/chunked.bin:")
        out = tmp_path / "out.bin"
        store.get_obj(chunked, destfilename=str(out))
        assert out.read_bytes() == src.read_bytes()
        with open(src, "rb") as f:
            assert store.put_obj("/hatrac/Image/fileobj.bin", f).startswith("/hatrac/Image/fileobj.bin:")
    finally:
        store._session.close()


def test_catalog_creation_and_model_building(deriva_server):
    from deriva.core import DerivaServer as DerivaPyServer
    from deriva.core.ermrest_model import Column, Key, Schema, Table, builtin_types

    server = DerivaPyServer("http", deriva_server.host, credentials=deriva_server.credentials("admin"))
    catalog = server.create_ermrest_catalog()
    try:
        assert catalog.catalog_id == "2"
        model = catalog.getCatalogModel()
        schema = model.create_schema(Schema.define("demo"))
        scan = schema.create_table(Table.define_asset("demo", "Scan"))
        assert {"URL", "Filename", "Length", "MD5"} <= {c.name for c in scan.columns}
        schema.create_table(Table.define("Thing", [Column.define("Name", builtin_types.text, nullok=False)],
                                         key_defs=[Key.define(["Name"])]))
        thing = catalog.getPathBuilder().schemas["demo"].tables["Thing"]
        assert list(thing.insert([{"Name": "a"}]))[0]["RCB"] == "admin"
        row = catalog.post("/entity/demo:Thing?nondefaults=RID", json=[{"RID": "MY-RID-1", "Name": "b"}]).json()
        assert row[0]["RID"] == "MY-RID-1"
    finally:
        catalog._session.close()
        server._session.close()


def test_text_plain_is_reuploaded_by_deriva_py_as_observed(deriva_server, tmp_path):
    _, store = bindings(deriva_server, "bearer")
    try:
        src = tmp_path / "notes.txt"
        src.write_text("hello " * 50)
        first = store.put_obj("/hatrac/Image/notes.txt", str(src), content_type="text/plain")
        second = store.put_obj("/hatrac/Image/notes.txt", str(src), content_type="text/plain")
        assert first != second  # the gzip HEAD has no Content-MD5 to compare (protocol §2.3)
    finally:
        store._session.close()


def test_password_login(deriva_server):
    catalog = ErmrestCatalog("http", deriva_server.host, "1",
                             credentials={"username": "writer", "password": "writer-password"})
    try:
        assert catalog.get_authn_session().json()["client"]["id"] == "writer"
    finally:
        catalog._session.close()
