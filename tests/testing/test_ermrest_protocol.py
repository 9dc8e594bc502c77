"""The emulated ERMrest, over real loopback HTTP, against deriva-protocol.md §1."""

from __future__ import annotations

import json
from urllib.parse import quote


from satchel.testing import rid as ridmod

CAT = "/ermrest/catalog/1"
IMAGE = f"{CAT}/entity/test-schema:Image"
DEFAULTS = "defaults=RID,RCT,RMT,RCB,RMB"


def image(n, **extra):
    return {"URL": f"/hatrac/Image/{n:032x}.f{n}", "Filename": f"f{n}", "Length": n, "MD5": f"{n:032x}", **extra}


def insert(client, rows, query=DEFAULTS, table=IMAGE):
    return client.post(f"{table}?{query}", json=rows)


def pairs(text):
    """Parse JSON keeping duplicate keys."""
    return json.loads(text, object_pairs_hook=lambda kv: kv)


def test_discovery_and_catalog(anon, writer):
    doc = anon.get("/ermrest/").json()
    assert doc["features"]["rid_lease"] is True and "onconflict" not in doc["features"]
    cat = writer.get(CAT).json()
    assert set(cat) == {"id", "snaptime", "rights", "acls", "annotations", "features", "is_persistent"}
    before = cat["snaptime"]
    assert writer.put(f"{CAT}/attributegroup/test-schema:Image/RID;Description",
                      json=[{"RID": "ZZZZ", "Description": "x"}]).json() == []
    assert writer.get(CAT).json()["snaptime"] != before  # moves even when nothing matched
    assert anon.get("/ermrest/catalog/99").status_code == 404


def test_schema_document_keys(writer):
    doc = writer.get(f"{CAT}/schema").json()
    assert {"snaptime", "annotations", "rights", "features", "schemas", "acls"} <= set(doc)
    t = doc["schemas"]["test-schema"]["tables"]["Image"]
    assert {"RID", "schema_name", "table_name", "kind", "comment", "rights", "annotations", "acls",
            "acl_bindings", "column_definitions", "keys", "foreign_keys"} <= set(t)
    rid_col = t["column_definitions"][0]
    assert rid_col["type"] == {"typename": "ermrest_rid", "is_domain": True, "base_type": {"typename": "text"}}
    assert "urlb32_encode" in rid_col["default"]
    assert "ERMrest_RID_Lease" in doc["schemas"]["public"]["tables"]


def test_insert_echo_has_duplicate_system_columns_and_nulls(writer):
    r = insert(writer, [dict(image(1), Bogus="ignored")])
    assert r.status_code == 200
    (row,) = pairs(r.text)
    names = [k for k, _ in row]
    for c in ("RID", "RCT", "RMT", "RCB", "RMB"):
        assert names.count(c) == 2
    plain = dict(row)
    assert plain["Description"] is None and "Bogus" not in plain and plain["RCB"] == "writer"
    assert plain["RCT"] == plain["RMT"] and plain["RMT"].endswith("+00:00")
    assert ridmod.ALPHABET.index(plain["RID"][-1]) % 2 == 0


def test_json_values_and_type_errors(writer):
    assert insert(writer, [image(2, Length="42")]).json()[0]["Length"] == 42
    for bad in ("abc", 4.0, 4.5):
        r = insert(writer, [image(3, Length=bad)])
        assert r.status_code == 400
    assert insert(writer, [image(4, Description=7)]).json()[0]["Description"] == "7"
    assert writer.post(f"{IMAGE}?{DEFAULTS}", json={"a": 1}).status_code == 400
    assert writer.post(f"{IMAGE}?{DEFAULTS}", content=b"[{", headers={"Content-Type": "application/json"}
                       ).status_code == 400
    assert insert(writer, []).json() == []


def test_constraint_violations_roll_back_the_whole_batch(writer):
    insert(writer, [image(10)])
    r = insert(writer, [image(11), image(10)])
    assert r.status_code == 409 and "duplicate key" in r.text
    r = insert(writer, [image(12), {"URL": "/x", "Length": 1}])
    assert r.status_code == 409 and "not-null" in r.text
    assoc = f"{CAT}/entity/test-schema:Image_Asset_Type"
    r = insert(writer, [{"Image": "NOPE", "Asset_Type": "Image"}], table=assoc)
    assert r.status_code == 409 and "foreign key" in r.text
    r = insert(writer, [image(13), image(13)], query=DEFAULTS + "&onconflict=skip")
    assert r.status_code == 400 and "Multiple input rows" in r.text
    urls = [row["URL"] for row in writer.get(f"{IMAGE}?limit=none").json()]
    assert urls == [image(10)["URL"]]


def test_onconflict_skip(writer):
    insert(writer, [image(20)])
    r = insert(writer, [image(20), image(21)], query=DEFAULTS + "&onconflict=skip")
    assert r.status_code == 200 and [x["URL"] for x in r.json()] == [image(21)["URL"]]
    r = insert(writer, [image(22)], query=DEFAULTS + "&onconflict=bogus")
    assert r.status_code == 400 and "Expected \"skip\" or \"abort\"" in r.text


def test_defaults_expand_rid_templates(writer):
    r = insert(writer, [{"Name": "Zebra", "Description": "z"}], query=DEFAULTS + ",ID,URI",
               table=f"{CAT}/entity/deriva-ml:Asset_Type")
    row = r.json()[0]
    assert row["ID"] == f"test-schema:{row['RID']}" and row["URI"] == f"/id/{row['RID']}"


def test_filters_sorting_paging(writer):
    rows = insert(writer, [image(n) for n in range(30, 40)]).json()
    rids = sorted(r["RID"] for r in rows)
    page = writer.get(f"{IMAGE}@sort(RID)?limit=3").json()
    assert [r["RID"] for r in page] == rids[:3]
    page = writer.get(f"{IMAGE}@sort(RID)@after({page[-1]['RID']})?limit=3").json()
    assert [r["RID"] for r in page] == rids[3:6]
    assert writer.get(f"{IMAGE}@sort(RID)@before({rids[5]})?limit=2").json()[-1]["RID"] == rids[4]
    assert len(writer.get(f"{IMAGE}/Length::geq::35").json()) == 5
    assert len(writer.get(f"{IMAGE}/Length=31;Length=32").json()) == 2
    assert len(writer.get(f"{IMAGE}/Length::gt::31&Length::lt::34").json()) == 2
    assert len(writer.get(f"{IMAGE}/Length=any(30,31,99)").json()) == 2
    assert len(writer.get(f"{IMAGE}/!(Length=30)").json()) == 9
    assert len(writer.get(f"{IMAGE}/Description::null::").json()) == 10
    assert writer.get(f"{IMAGE}?limit=0").json() == []
    assert len(writer.get(f"{IMAGE}?limit=none").json()) == 10
    assert len(writer.get(IMAGE).json()) == 10  # no limit = unlimited
    assert writer.get(f"{IMAGE}?limit=-1").status_code == 409
    assert writer.get(f"{IMAGE}@sort(RMT,RID)@after({rids[0]})").status_code == 400
    assert writer.get(f"{IMAGE}@after({rids[0]})").status_code == 400
    assert writer.get(f"{IMAGE}/Bogus=1").status_code == 409
    assert writer.get(f"{CAT}/entity/test-schema:Nope").status_code == 409
    desc = writer.get(f"{IMAGE}@sort(Length::desc::,RID)?limit=2").json()
    assert [r["Length"] for r in desc] == [39, 38]


def test_timestamps_need_encoding_and_compare_by_value(writer):
    rows = insert(writer, [image(50)]).json()
    rmt = rows[0]["RMT"]
    assert writer.get(f"{IMAGE}/RMT::geq::{rmt}").status_code == 400  # raw ':'
    assert len(writer.get(f"{IMAGE}/RMT::geq::{quote(rmt, safe='')}").json()) == 1
    zulu = rmt.replace("+00:00", "Z").replace("T", " ")
    assert len(writer.get(f"{IMAGE}/RMT={quote(zulu, safe='')}").json()) == 1
    after = writer.get(f"{IMAGE}@sort(RMT,RID)@after({quote(rmt, safe='')},{rows[0]['RID']})").json()
    assert after == []


def test_attribute_and_aggregate(writer):
    insert(writer, [image(60), image(61)])
    got = writer.get(f"{CAT}/attribute/test-schema:Image/Length=any(60,61)/RID,URL,MD5").json()
    assert sorted(set(got[0])) == ["MD5", "RID", "URL"] and len(got) == 2
    assert writer.get(f"{CAT}/aggregate/test-schema:Image/n:=cnt(*)").json() == [{"n": 2}]


def test_rid_leases(deriva_server, writer, reader, admin):
    lease_url = f"{CAT}/entity/public:ERMrest_RID_Lease"
    (lease,) = writer.post(f"{lease_url}?{DEFAULTS}", json=[{"ID": "job-1"}]).json()
    assert writer.post(f"{lease_url}?{DEFAULTS}", json=[{"ID": "job-1"}]).status_code == 409
    assert writer.post(f"{lease_url}?{DEFAULTS}&onconflict=skip", json=[{"ID": "job-1"}]).json() == []
    assert reader.post(f"{lease_url}?{DEFAULTS}", json=[{"ID": "job-1"}]).status_code == 403
    # lessee-only visibility
    assert [r["ID"] for r in writer.get(f"{lease_url}/ID=any(job-1,job-2)").json()] == ["job-1"]
    assert admin.get(lease_url).json()[0]["ID"] == "job-1"
    # exact-string lease check
    row = image(70, RID=lease["RID"].lower())
    r = writer.post(f"{IMAGE}?defaults=RCT,RMT,RCB,RMB&nondefaults=RID", json=[row])
    assert r.status_code == 403 and "non-leased" in r.text
    row["RID"] = lease["RID"]
    r = writer.post(f"{IMAGE}?defaults=RCT,RMT,RCB,RMB&nondefaults=RID", json=[row])
    assert r.status_code == 200 and r.json()[0]["RID"] == lease["RID"]
    assert writer.get(lease_url).json() == []  # consumed
    # replay gets 403 (lease gone), even with onconflict=skip
    r = writer.post(f"{IMAGE}?defaults=RCT,RMT,RCB,RMB&nondefaults=RID&onconflict=skip", json=[row])
    assert r.status_code == 403
    # a lease is consumed even when its row is skipped as a conflict
    (lease2,) = writer.post(f"{lease_url}?{DEFAULTS}", json=[{"ID": "job-2"}]).json()
    dup = image(70, RID=lease2["RID"])
    r = writer.post(f"{IMAGE}?defaults=RCT,RMT,RCB,RMB&nondefaults=RID&onconflict=skip", json=[dup])
    assert r.status_code == 200 and r.json() == []
    assert writer.get(lease_url).json() == []
    assert writer.get(f"{CAT}/entity_rid/{lease2['RID']}").status_code == 404
    # re-leasing a consumed ID yields a new RID
    (again,) = writer.post(f"{lease_url}?{DEFAULTS}", json=[{"ID": "job-1"}]).json()
    assert again["RID"] != lease["RID"]


def test_system_columns_and_owner_rids(writer, admin):
    assert writer.post(f"{IMAGE}?nondefaults=RMT", json=[image(80)]).status_code == 403
    assert writer.post(f"{IMAGE}?nondefaults=RCT", json=[image(80)]).status_code == 403
    r = admin.post(f"{IMAGE}?defaults=RCT,RMT,RCB,RMB&nondefaults=RID", json=[image(81, RID="MY-RID-1")])
    assert r.status_code == 200 and r.json()[0]["RID"] == "MY-RID-1"
    nxt = insert(writer, [image(82)]).json()[0]["RID"]
    assert ridmod.decode(nxt) > ridmod.decode("MY-RID-1")
    r = admin.post(f"{IMAGE}?nondefaults=RID", json=[image(83, RID="bad_rid!")])
    assert r.status_code == 409
    # RID without nondefaults is ignored
    assert insert(writer, [image(84, RID="ZZZZ")]).json()[0]["RID"] != "ZZZZ"


def test_attributegroup_updates(writer):
    rows = insert(writer, [image(90), image(91)]).json()
    path = f"{CAT}/attributegroup/test-schema:Image/RID;Description"
    r = writer.put(path, json=[{"RID": rows[0]["RID"], "Description": "new"}, {"RID": "1-ZZZZ", "Description": "x"}])
    assert r.status_code == 200 and r.json() == [{"RID": rows[0]["RID"], "Description": "new"}]
    fresh = writer.get(f"{IMAGE}/RID={rows[0]['RID']}").json()[0]
    assert fresh["Description"] == "new" and fresh["RMT"] != rows[0]["RMT"]
    # optimistic locking on RID,RMT
    locked = f"{CAT}/attributegroup/test-schema:Image/RID,RMT;Description"
    stale = writer.put(locked, json=[{"RID": rows[0]["RID"], "RMT": rows[0]["RMT"], "Description": "late"}])
    assert stale.json() == []
    ok = writer.put(locked, json=[{"RID": rows[0]["RID"], "RMT": fresh["RMT"], "Description": "won"}])
    assert len(ok.json()) == 1
    assert writer.put(f"{CAT}/attributegroup/test-schema:Image/RID;RMT", json=[]).status_code == 403
    dup = [{"RID": rows[1]["RID"], "Description": "a"}, {"RID": rows[1]["RID"], "Description": "b"}]
    assert writer.put(path, json=dup).status_code == 400
    assert writer.put(f"{CAT}/attributegroup/test-schema:Image/RID;Bogus", json=[]).status_code == 409
    cas = f"{CAT}/attributegroup/test-schema:Image/RID,o0:=Description;n0:=Description"
    assert writer.put(cas, json=[{"RID": rows[0]["RID"], "o0": "won", "n0": "cas"}]).json()[0]["n0"] == "cas"


def test_delete_and_entity_rid(writer):
    (row,) = insert(writer, [image(100)]).json()
    assert writer.delete(f"{IMAGE}/RID={row['RID']}").status_code == 204
    assert writer.delete(f"{IMAGE}/RID={row['RID']}").status_code == 404
    gone = writer.get(f"{CAT}/entity_rid/{row['RID'].lower()}").json()
    assert gone["table_name"] == "Image" and " " in gone["deleted_at"] and "last_visible_snaptime" in gone
    assert writer.get(f"{CAT}/entity_rid/1-ZZZZ").status_code == 404


def test_delete_cascades_to_associations(writer):
    (row,) = insert(writer, [image(101)]).json()
    assoc = f"{CAT}/entity/test-schema:Image_Asset_Type"
    assert insert(writer, [{"Image": row["RID"], "Asset_Type": "Image"}], table=assoc).status_code == 200
    assert writer.delete(f"{IMAGE}/RID={row['RID']}").status_code == 204
    assert writer.get(assoc).json() == []


def test_access_control(anon, reader, writer):
    r = insert(anon, [image(110)])
    assert r.status_code == 401 and "Access requires authentication" in r.text
    assert insert(reader, [image(110)]).status_code == 403
    assert anon.get(IMAGE).status_code == 200
    assert writer.post(f"{CAT}@{writer.get(CAT).json()['snaptime']}/entity/test-schema:Image",
                       json=[image(111)]).status_code == 403


def test_model_changes(admin, writer):
    assert admin.post(f"{CAT}/schema/demo").status_code == 201
    sys_cols = [{"name": n, "type": {"typename": t}} for n, t in (
        ("RID", "ermrest_rid"), ("RCT", "ermrest_rct"), ("RMT", "ermrest_rmt"), ("RCB", "ermrest_rcb"),
        ("RMB", "ermrest_rmb"))]
    table = {"table_name": "Thing", "column_definitions": sys_cols + [{"name": "Name", "type": {"typename": "text"}}],
             "keys": [{"unique_columns": ["RID"]}, {"unique_columns": ["Name"]}]}
    r = admin.post(f"{CAT}/schema/demo/table", json=table)
    assert r.status_code == 201 and r.json()["table_name"] == "Thing"
    assert admin.post(f"{CAT}/schema/demo/table", json=table).status_code == 409
    bare = {"table_name": "Bare", "column_definitions": [{"name": "x", "type": {"typename": "text"}}]}
    assert admin.post(f"{CAT}/schema/demo/table", json=bare).status_code == 400
    assert writer.post(f"{CAT}/schema/demo2").status_code == 403
    assert insert(writer, [{"Name": "a"}], table=f"{CAT}/entity/demo:Thing").status_code == 200
    created = admin.post("/ermrest/catalog")
    assert created.status_code == 201 and created.headers["Location"] == f"/ermrest/catalog/{created.json()['id']}"


def test_csv_input_and_output(writer):
    body = "URL,Filename,Description,Length,MD5\n/u1,f,,5,abc\n"
    r = writer.post(f"{IMAGE}?{DEFAULTS}", content=body, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json()[0]["Description"] is None
    bad = writer.post(f"{IMAGE}?{DEFAULTS}", content="URL,Bogus\n/u2,1\n", headers={"Content-Type": "text/csv"})
    assert bad.status_code == 409
    missing = writer.post(f"{IMAGE}?{DEFAULTS}", content="URL,Length,MD5\n/u3,1,a\n",
                          headers={"Content-Type": "text/csv"})
    assert missing.status_code == 400 and "Missing expected CSV columns" in missing.text
    assert writer.get(IMAGE, headers={"Accept": "text/csv"}).text.startswith("RID,RCT,RMT")


def test_long_urls_get_414(writer):
    values = ",".join(f"{n:032x}" for n in range(300))
    assert writer.get(f"{IMAGE}/MD5=any({values})").status_code == 414


def test_injected_faults(deriva_server, writer):
    deriva_server.inject(503, times=1, method="POST")
    r = insert(writer, [image(120)])
    assert r.status_code == 503 and "Transaction aborted" in r.text
    assert insert(writer, [image(120)]).status_code == 200


def test_state_survives_restart(deriva_server, writer):
    (row,) = insert(writer, [image(130)]).json()
    token = deriva_server.token
    deriva_server.restart()
    assert deriva_server.token == token
    import httpx

    with httpx.Client(base_url=deriva_server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        again = c.get(f"{IMAGE}/RID={row['RID']}").json()
        assert again == [{k: v for k, v in row.items()}]
        nxt = insert(c, [image(131)]).json()[0]["RID"]
        assert ridmod.decode(nxt) > ridmod.decode(row["RID"])


def test_entity_put_upsert_and_other_formats(writer):
    (row,) = insert(writer, [image(140)]).json()
    r = writer.put(IMAGE, json=[{"URL": row["URL"], "Description": "up"}, image(141)])
    assert r.status_code == 200
    updated, inserted = r.json()
    assert updated == {"URL": row["URL"], "Description": "up"} and "RID" in inserted
    only_rid = f"{CAT}/entity/deriva-ml:Workflow"
    assert writer.put(only_rid, json=[{"Name": "w"}]).status_code == 409
    groups = writer.get(f"{CAT}/attributegroup/test-schema:Image/Filename").json()
    assert groups == [{"Filename": "f140"}, {"Filename": "f141"}]
    stream = writer.get(IMAGE, headers={"Accept": "application/x-json-stream"}).text.splitlines()
    assert len(stream) == 2 and json.loads(stream[0])["URL"] == row["URL"]
    r = writer.post(f"{IMAGE}?{DEFAULTS}", content=json.dumps(image(142)) + "\n",
                    headers={"Content-Type": "application/x-json-stream"})
    assert r.status_code == 200 and len(r.json()) == 1


def test_catalog_wide_etags(writer, reader):
    first = writer.get(IMAGE)
    etag = first.headers["ETag"]
    assert etag.endswith(';*/*;' + etag.split(";")[-1]) and ";" in etag
    assert writer.get(IMAGE, headers={"If-None-Match": etag}).status_code == 304
    assert reader.get(IMAGE).headers["ETag"] != etag  # the first part is per user
    other_table = writer.get(f"{CAT}/entity/deriva-ml:Asset_Role").headers["ETag"]
    assert other_table == etag  # the tag covers the whole catalog
    stale = writer.post(f"{IMAGE}?{DEFAULTS}", json=[image(150)], headers={"If-Match": etag})
    assert stale.status_code == 200
    r = writer.post(f"{IMAGE}?{DEFAULTS}", json=[image(151)], headers={"If-Match": etag})
    assert r.status_code == 412 and r.headers["ETag"] != etag
    assert writer.get(IMAGE, headers={"If-None-Match": etag}).status_code == 200


def test_snapshot_reads(deriva_server, writer):
    rows = insert(writer, [image(160), image(161), image(162)]).json()
    snap = writer.get(CAT).json()["snaptime"]
    writer.delete(f"{IMAGE}/RID={rows[0]['RID']}")
    writer.put(f"{CAT}/attributegroup/test-schema:Image/RID;Description",
               json=[{"RID": rows[1]["RID"], "Description": "later"}])
    then = writer.get(f"{CAT}@{snap}/entity/test-schema:Image@sort(RID)").json()
    assert [r["RID"] for r in then] == sorted(r["RID"] for r in rows)
    assert [r["Description"] for r in then if r["RID"] == rows[1]["RID"]] == [None]
    live = {r["RID"] for r in writer.get(f"{CAT}/attribute/test-schema:Image/RID").json()}
    old = {r["RID"] for r in writer.get(f"{CAT}@{snap}/attribute/test-schema:Image/RID").json()}
    assert old - live == {rows[0]["RID"]}  # deletions found by comparing snapshots
    assert writer.get(f"{CAT}@{snap}").json()["snaptime"] == snap
    assert writer.get(f"{CAT}@1/entity/test-schema:Image").status_code == 409
    first, last = writer.get(f"{CAT}/history/,").json()["snaprange"]
    assert ridmod.decode(first) < ridmod.decode(last)
    deriva_server.restart()
    import httpx

    with httpx.Client(base_url=deriva_server.url) as c:
        assert len(c.get(f"{CAT}@{snap}/entity/test-schema:Image").json()) == 3


def test_paths_follow_foreign_keys(writer):
    rows = insert(writer, [image(170), image(171)]).json()
    assoc = f"{CAT}/entity/test-schema:Image_Asset_Type"
    insert(writer, [{"Image": rows[0]["RID"], "Asset_Type": "Image"}], table=assoc)
    types = writer.get(f"{CAT}/entity/test-schema:Image/RID={rows[0]['RID']}/test-schema:Image_Asset_Type"
                       "/deriva-ml:Asset_Type").json()
    assert [t["Name"] for t in types] == ["Image"]
    tagged = writer.get(f"{CAT}/attribute/deriva-ml:Asset_Type/Name=Image/test-schema:Image_Asset_Type"
                        "/test-schema:Image/RID,URL").json()
    assert tagged == [{"RID": rows[0]["RID"], "URL": rows[0]["URL"]}]
    assert writer.get(f"{CAT}/entity/test-schema:Image/test-schema:Model").status_code == 409


def test_failed_leased_insert_keeps_its_leases(writer):
    lease_url = f"{CAT}/entity/public:ERMrest_RID_Lease"
    (lease,) = writer.post(f"{lease_url}?{DEFAULTS}", json=[{"ID": "keep"}]).json()
    bad = [{"RID": lease["RID"], "Image": "NOPE", "Asset_Type": "Image"}]
    r = writer.post(f"{CAT}/entity/test-schema:Image_Asset_Type?defaults=RCT,RMT,RCB,RMB&nondefaults=RID", json=bad)
    assert r.status_code == 409
    assert [x["RID"] for x in writer.get(lease_url).json()] == [lease["RID"]]
    blanks = writer.post(f"{lease_url}?{DEFAULTS}", json=[{}, {}]).json()
    assert [b["ID"] for b in blanks] == [None, None]


def test_statement_timeout_rolls_back(deriva_server, writer):
    deriva_server.app.ermrest.request_timeout = 0.0  # every write now overruns
    r = insert(writer, [image(180)])
    assert r.status_code == 400 and "Query run time limit exceeded" in r.text
    deriva_server.app.ermrest.request_timeout = 15.0
    assert writer.get(IMAGE).json() == []
