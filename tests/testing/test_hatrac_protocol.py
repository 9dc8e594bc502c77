"""The emulated Hatrac, over real loopback HTTP, against deriva-protocol.md §2."""

from __future__ import annotations

import base64
import hashlib

import httpx


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def put(client, path, data, **headers):
    return client.put(f"{path}?parents=true", content=data, headers={"Content-MD5": b64md5(data), **headers})


def test_every_put_is_a_new_version(writer):
    first = put(writer, "/hatrac/Image/ns/a.txt", b"hello!", **{"Content-Type": "text/plain"})
    second = put(writer, "/hatrac/Image/ns/a.txt", b"hello!")
    assert first.status_code == second.status_code == 201
    assert first.headers["Location"] != second.headers["Location"]
    assert first.text.strip() == first.headers["Location"] and first.headers["Content-Type"] == "text/uri-list"
    version = second.headers["Location"].rsplit(":", 1)[1]
    head = writer.head("/hatrac/Image/ns/a.txt")
    assert head.headers["content-md5"] == b64md5(b"hello!")
    assert head.headers["Content-Location"] == second.headers["Location"]
    assert head.headers["ETag"] == f'"{version}"'
    assert head.headers["content-disposition"] == "filename*=UTF-8''a.txt"
    assert head.headers["Content-Length"] == "6"
    assert writer.get("/hatrac/Image/ns/a.txt;versions").json() == [second.headers["Location"], first.headers["Location"]]
    assert writer.get(first.headers["Location"]).content == b"hello!"
    assert writer.get("/hatrac/Image/ns/a.txt", headers={"If-None-Match": f'"{version}"'}).status_code == 304


def test_hashes_in_hex_or_base64_and_only_if_supplied(writer):
    data = b"abc"
    r = writer.put("/hatrac/Image/ns/hex?parents=true", content=data, headers={"Content-MD5": hashlib.md5(data).hexdigest()})
    assert r.status_code == 201
    assert writer.head("/hatrac/Image/ns/hex").headers["content-md5"] == b64md5(data)
    writer.put("/hatrac/Image/ns/nohash?parents=true", content=data)
    assert "content-md5" not in writer.head("/hatrac/Image/ns/nohash").headers


def test_md5_mismatch_leaves_a_name_without_content(writer):
    r = writer.put("/hatrac/Image/ns/bad?parents=true", content=b"xyz", headers={"Content-MD5": b64md5(b"other")})
    assert r.status_code == 400 and "does not match" in r.text
    assert writer.head("/hatrac/Image/ns/bad").status_code == 409
    assert writer.get("/hatrac/Image/ns/bad").status_code == 409
    assert writer.get("/hatrac/Image/ns/bad;versions").json() == []
    assert put(writer, "/hatrac/Image/ns/bad", b"xyz", **{"If-None-Match": "*"}).status_code == 201


def test_if_none_match_and_if_match(writer):
    r = put(writer, "/hatrac/Image/ns/c", b"1", **{"If-None-Match": "*"})
    assert r.status_code == 201
    again = put(writer, "/hatrac/Image/ns/c", b"1", **{"If-None-Match": "*"})
    assert again.status_code == 412 and again.headers["ETag"]
    version = r.headers["Location"].rsplit(":", 1)[1]
    assert put(writer, "/hatrac/Image/ns/c", b"2", **{"If-Match": '"nope"'}).status_code == 412
    assert put(writer, "/hatrac/Image/ns/c", b"2", **{"If-Match": f'"{version}"'}).status_code == 201


def test_parents_and_namespaces(writer):
    r = writer.put("/hatrac/Image/deep/x/y", content=b"1")
    assert r.status_code == 404
    assert writer.put("/hatrac/Image/deep/x/y?parents=true", content=b"1").status_code == 201
    assert writer.get("/hatrac/Image/deep/x").json() == ["/hatrac/Image/deep/x/y"]
    ns = writer.put("/hatrac/Image/space", headers={"Content-Type": "application/x-hatrac-namespace"})
    assert ns.status_code == 201
    assert writer.put("/hatrac/Image/space", headers={"Content-Type": "application/x-hatrac-namespace"}).status_code == 409
    assert writer.put("/hatrac/bad!name", content=b"1").status_code == 400


def test_zero_bytes_and_ranges(writer):
    assert put(writer, "/hatrac/Image/ns/empty", b"").status_code == 201
    head = writer.head("/hatrac/Image/ns/empty")
    assert head.status_code == 200 and "Content-Length" not in head.headers
    assert head.headers["content-md5"] == "1B2M2Y8AsgTpgAmY7PhCfg=="
    assert writer.get("/hatrac/Image/ns/empty").content == b""
    put(writer, "/hatrac/Image/ns/r", b"0123456789AB")
    r = writer.get("/hatrac/Image/ns/r", headers={"Range": "bytes=2-5"})
    assert r.status_code == 206 and r.content == b"2345" and r.headers["Content-Range"] == "bytes 2-5/12"
    assert "content-md5" not in r.headers
    assert writer.get("/hatrac/Image/ns/r", headers={"Range": "bytes=-3"}).content == b"9AB"
    assert writer.get("/hatrac/Image/ns/r", headers={"Range": "bytes=10-"}).content == b"AB"
    bad = writer.get("/hatrac/Image/ns/r", headers={"Range": "bytes=20-30"})
    assert bad.status_code == 416 and bad.headers["Content-Range"] == "bytes */12"
    assert writer.get("/hatrac/Image/ns/r", headers={"Range": "bytes=1-2,4-5"}).status_code == 501
    assert writer.get("/hatrac/Image/ns/r", headers={"Range": "pages=1"}).status_code == 200


def test_delete_burns_names(writer):
    first = put(writer, "/hatrac/Image/ns/d", b"1").headers["Location"]
    second = put(writer, "/hatrac/Image/ns/d", b"2").headers["Location"]
    assert writer.delete(second).status_code == 204
    assert writer.get("/hatrac/Image/ns/d").content == b"1"
    assert writer.get(second).status_code == 404
    assert writer.delete("/hatrac/Image/ns/d").status_code == 204
    assert writer.head("/hatrac/Image/ns/d").status_code == 404
    assert put(writer, "/hatrac/Image/ns/d", b"3").status_code == 409
    assert writer.get(first).status_code == 404


def test_access(anon, reader, writer):
    assert put(anon, "/hatrac/Image/ns/x", b"1").status_code == 401
    assert put(reader, "/hatrac/Image/ns/x", b"1").status_code == 403
    assert put(writer, "/hatrac/Image/ns/x", b"1").status_code == 201
    assert anon.get("/hatrac/Image/ns/x").status_code == 200
    assert anon.get("/hatrac/").status_code == 401


def job(client, path, data, chunk, **extra):
    doc = {"chunk-length": chunk, "content-length": len(data), "content-md5": hashlib.md5(data).hexdigest(), **extra}
    r = client.post(f"{path};upload?parents=true", json=doc)
    assert r.status_code == 201 and r.text.endswith("\n") and r.headers["Location"] == r.text.strip()
    return r.headers["Location"]


def test_upload_job_happy_path_and_status(writer, deriva_server):
    data = bytes(range(256)) * 40  # 10240 bytes
    url = job(writer, "/hatrac/Image/big/obj", data, 4096)
    status = writer.get(url).json()
    assert {"url", "target", "owner", "chunk-length", "content-length", "content-type", "content-md5"} <= set(status)
    assert status["content-md5"] == b64md5(data)  # hex in, base64 out
    for i in (2, 0, 1, 1):  # any order, repeats fine
        chunk = data[i * 4096:(i + 1) * 4096]
        assert writer.put(f"{url}/{i}", content=chunk).status_code == 204
    assert writer.get(f"{url}/0").status_code == 405
    done = writer.post(url)
    assert done.status_code == 201
    assert done.headers["Location"] == "/hatrac/Image/big/obj:" + url.rsplit("/", 1)[1]  # version id = job id
    assert writer.get("/hatrac/Image/big/obj").content == data
    for method in ("GET", "PUT", "POST", "DELETE"):
        assert writer.request(method, url).status_code == 404


def test_upload_job_errors(writer):
    data = b"abcdefghijkl"
    url = job(writer, "/hatrac/Image/big/e", data, 5)
    assert writer.put(f"{url}/3", content=b"x").status_code == 409
    assert writer.put(f"{url}/-1", content=b"x").status_code == 400
    r = writer.put(f"{url}/0", content=b"abcd")
    assert r.status_code == 409 and "does not match job chunk size 5" in r.text
    assert writer.put(f"{url}/0", content=b"abcde", headers={"Content-MD5": b64md5(b"zzzzz")}).status_code == 400
    writer.put(f"{url}/0", content=b"abcde")
    writer.put(f"{url}/1", content=b"fghij")
    assert writer.post(url, headers={"If-None-Match": "*"}).status_code == 412
    r = writer.post(url)
    assert r.status_code == 409 and "MD5" in r.text  # chunk 2 missing: job stays open
    writer.put(f"{url}/2", content=b"kl")
    assert writer.post(url).status_code == 201


def test_over_long_final_chunk_poisons_the_job(writer):
    data = b"abcdefghijkl"
    url = job(writer, "/hatrac/Image/big/p", data, 5)
    writer.put(f"{url}/0", content=b"abcde")
    writer.put(f"{url}/1", content=b"fghij")
    assert writer.put(f"{url}/2", content=b"klXYZ").status_code == 204
    assert writer.put(f"{url}/2", content=b"kl").status_code == 204
    assert writer.post(url).status_code == 409
    assert writer.delete(url).status_code == 204
    assert writer.head("/hatrac/Image/big/p").status_code == 409  # name left without content


def test_jobs_survive_restart_and_zero_length(deriva_server, writer):
    data = b"0123456789"
    url = job(writer, "/hatrac/Image/big/r", data, 4)
    writer.put(f"{url}/0", content=b"0123")
    deriva_server.restart()
    with httpx.Client(base_url=deriva_server.url, headers={"Authorization": f"Bearer {deriva_server.token}"}) as c:
        c.put(f"{url}/1", content=b"4567")
        c.put(f"{url}/2", content=b"89")
        assert c.post(url).status_code == 201
        assert c.get("/hatrac/Image/big/r").content == data
        empty = job(c, "/hatrac/Image/big/z", b"", 4)
        assert c.post(empty).status_code == 201
        assert c.get("/hatrac/Image/big/z").content == b""


def test_other_users_cannot_touch_a_job(deriva_server, writer, reader):
    url = job(writer, "/hatrac/Image/big/o", b"abc", 4)
    assert reader.put(f"{url}/0", content=b"abc").status_code == 403


def test_front_end_compression_drops_the_md5(writer):
    data = b"some text " * 100
    put(writer, "/hatrac/Image/ns/t.txt", data, **{"Content-Type": "text/plain"})
    plain = writer.head("/hatrac/Image/ns/t.txt", headers={"Accept-Encoding": "identity"})
    assert plain.headers["content-md5"] == b64md5(data)
    gz = writer.head("/hatrac/Image/ns/t.txt", headers={"Accept-Encoding": "gzip, deflate"})
    assert "content-md5" not in gz.headers and gz.headers["ETag"].endswith('-gzip"')
    assert gz.headers["Content-Encoding"] == "gzip" and int(gz.headers["Content-Length"]) < len(data)
    assert writer.get("/hatrac/Image/ns/t.txt", headers={"Accept-Encoding": "gzip"}).content == data  # httpx decodes
    put(writer, "/hatrac/Image/ns/b.bin", data)
    assert writer.head("/hatrac/Image/ns/b.bin", headers={"Accept-Encoding": "gzip"}).headers["content-md5"]


def test_namespace_rights(writer, admin, anon):
    r = put(writer, "/hatrac/newtop/x", b"1")
    assert r.status_code == 403 and "/hatrac" in r.text  # only the root's owners make top-level names
    assert writer.post("/hatrac/newtop/y;upload?parents=true",
                       json={"chunk-length": 1, "content-length": 1}).status_code == 403
    assert admin.put("/hatrac/newtop", headers={"Content-Type": "application/x-hatrac-namespace"}).status_code == 201
    assert put(writer, "/hatrac/newtop/x", b"1").status_code == 403  # someone else's namespace
    assert writer.put("/hatrac/newtop;acl/create", json=["writer"]).status_code == 403
    assert admin.put("/hatrac/newtop;acl/create", json=["writer"]).status_code == 204
    assert admin.get("/hatrac/newtop;acl").json()["create"] == ["writer"]
    assert put(writer, "/hatrac/newtop/x", b"1").status_code == 201
    assert writer.get("/hatrac/Image;acl").json()["create"] == ["writer"]  # the asset tables' namespaces
    assert anon.get("/hatrac/Image;acl").status_code == 200
