"""The emulated Hatrac object store: names, versions, objects (jobs: hatrac_jobs).

Bytes live in ``<data>/objects/<version>`` and open jobs in
``<data>/jobs/<job>``; names, versions and jobs are rows in the state DB.
Request bodies stream to a temp file while being hashed, so memory stays
constant whatever the object size.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote, unquote

import sqlalchemy as sa

from satchel.testing import state as S
from satchel.testing.hatrac_common import DISPOSITION, b64, check_storable, new_id, parse_hash
from satchel.testing.hatrac_jobs import UploadJobs
from satchel.testing.httpd import BLOCK, HTTPError, Request, Response

NAMESPACE_TYPE = "application/x-hatrac-namespace"
#: what Apache's stock Debian mod_deflate setup compresses for gzip-accepting clients (§2.3)
COMPRESSED_TYPES = ("text/html", "text/plain", "text/xml", "text/css", "text/javascript",
                    "application/javascript", "application/x-javascript", "application/rss+xml",
                    "application/xml")
DEFAULT_MAX_PAYLOAD = 128 * 1024 * 1024
_PATH_OK = re.compile(r"^(/[-._~A-Za-z0-9%]*)+$")
class Hatrac(UploadJobs):
    def __init__(self, state: S.State, lock: threading.RLock, *, writers: set[str], admins: set[str],
                 max_payload: int = DEFAULT_MAX_PAYLOAD, compressed_types=COMPRESSED_TYPES):
        self.state = state
        self.lock = lock
        self.writers = writers
        self.admins = admins
        self.max_payload = max_payload
        self.compressed_types = frozenset(compressed_types)
        self.names: dict[str, dict] = {}
        self.versions: dict[str, list[dict]] = {}  # oldest first, live and deleted
        self.jobs: dict[str, dict] = {}
        self._seq = 0
        with state.engine.connect() as conn:
            for r in conn.execute(sa.select(S.hatrac_names)):
                self.names[r.path] = {"kind": r.kind, "owner": r.owner, "burned": r.burned,
                                      "create": json.loads(r.create_acl or "[]")}
            for r in conn.execute(sa.select(S.hatrac_versions).order_by(S.hatrac_versions.c.seq)):
                self.versions.setdefault(r.path, []).append(dict(r._mapping))
                self._seq = max(self._seq, r.seq)
            for r in conn.execute(sa.select(S.hatrac_jobs)):
                self.jobs[r.job] = dict(json.loads(r.doc), job=r.job, path=r.path, owner=r.owner)

    # --- helpers ------------------------------------------------------------------

    def _ids(self, client) -> set[str]:
        if not client:
            return set()
        return {client["id"], *(a["id"] for a in client.get("attributes", []))}

    def _require_write(self, req: Request, path: str) -> None:
        if req.client is None:
            raise HTTPError(401, f"Authentication required for access to {path}.")
        if not self._ids(req.client) & (self.writers | self.admins):
            raise HTTPError(403, f"Access to {path} forbidden.")

    def _content_node(self, path: str) -> dict | None:
        """The node of a name about to get content (None if new); 409 for a burned name or a namespace."""
        node = self.names.get(path)
        if node is not None and node["burned"]:
            raise HTTPError(409, f"Name {path} not available.")
        if node is not None and node["kind"] == "namespace":
            raise HTTPError(409, f"Namespace {path} already exists.")
        return node

    def _require_owner(self, req: Request, path: str, owner: str | None) -> None:
        self._require_write(req, path)
        ids = self._ids(req.client)
        if owner and owner not in ids and not ids & self.admins:
            raise HTTPError(403, f"Access to {path} forbidden.")

    def current(self, path: str) -> dict | None:
        live = [v for v in self.versions.get(path, []) if not v["deleted"]]
        return live[-1] if live else None

    def _save_name(self, conn, path: str) -> None:
        n = self.names[path]
        n.setdefault("create", [])
        # bare SQL on the transaction's own connection: a PUT's hot path
        conn.connection.driver_connection.execute(
            "INSERT OR REPLACE INTO hatrac_names (path, kind, owner, burned, create_acl) VALUES (?, ?, ?, ?, ?)",
            (path, n["kind"], n["owner"], n["burned"], json.dumps(n["create"])))

    def ensure_namespace(self, path: str, *, owner: str, create: list[str]) -> None:
        """Make a namespace (and its ancestors) exist, e.g. a deployment's ``/hatrac/<Table>``."""
        with self.lock, self.state.begin() as conn:
            prefix = "/hatrac"
            for part in path.split("/")[2:]:
                prefix = f"{prefix}/{part}"
                if prefix not in self.names:
                    self.names[prefix] = {"kind": "namespace", "owner": owner, "burned": False, "create": []}
                    self._save_name(conn, prefix)
            self.names[path]["create"] = sorted(set(self.names[path]["create"]) | set(create))
            self._save_name(conn, path)

    def _check_create(self, req: Request, parent: str) -> None:
        """403 unless the client may create names in ``parent`` (its owner, its create ACL, or an admin).

        Only the root's owners (admins) may create top-level namespaces.
        """
        ids = self._ids(req.client)
        if ids & self.admins:
            return
        node = self.names.get(parent)
        if parent != "/hatrac" and node is not None and (node["owner"] in ids or ids & set(node.get("create", []))):
            return
        raise HTTPError(403, f"Access to {parent} forbidden.")

    def _ensure_parents(self, req: Request, path: str, parents: bool, conn) -> list[str]:
        """Check (or with parents=true create) the ancestors; returns created names."""
        created = []
        parts = path.split("/")[2:-1]  # below /hatrac, excluding the leaf
        prefix = "/hatrac"
        for part in parts:
            prefix = f"{prefix}/{part}"
            node = self.names.get(prefix)
            if node is None:
                if not parents:
                    raise HTTPError(404, f"Resource {path} not found.")
                self._check_create(req, prefix.rsplit("/", 1)[0])
                self.names[prefix] = {"kind": "namespace", "owner": req.client["id"], "burned": False}
                self._save_name(conn, prefix)
                created.append(prefix)
            elif node["burned"]:
                raise HTTPError(409, f"Name {prefix} not available.")
            elif node["kind"] != "namespace":
                raise HTTPError(409, f"Parent {prefix} is not a namespace.")
        self._check_create(req, path.rsplit("/", 1)[0])  # the new leaf itself
        return created

    # --- routing ------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        raw = req.raw_path
        base, _, sub = raw.partition(";")
        if base != "/hatrac" and base.endswith("/"):
            base = base.rstrip("/") or "/hatrac"
        version = None
        leaf = base.rsplit("/", 1)[-1]
        if ":" in leaf:
            leaf_name, version = leaf.split(":", 1)
            base = base[: -len(leaf)] + leaf_name
        if base in ("/hatrac", "/hatrac/"):
            base = "/hatrac"
        elif not _PATH_OK.match(base):
            raise HTTPError(400, f"Invalid name {base}.")
        if sub:
            return self._sub(req, base, sub)
        if req.method in ("GET", "HEAD"):
            return self._get(req, base, version)
        if req.method == "PUT":
            if version:
                raise HTTPError(405, "Method not allowed.")
            return self._put(req, base)
        if req.method == "DELETE":
            return self._delete(req, base, version)
        raise HTTPError(405, "Method not allowed.")

    # --- objects ------------------------------------------------------------------

    def _put(self, req: Request, path: str) -> Response:
        if path == "/hatrac":
            raise HTTPError(409, "Namespace /hatrac already exists.")
        self._require_write(req, path)
        parents = req.arg("parents") == "true"
        ctype = (req.header("Content-Type") or "application/octet-stream").split(";")[0].strip()
        with self.lock:
            node = self._content_node(path)
            if ctype == NAMESPACE_TYPE:
                if node is not None:
                    raise HTTPError(409, f"Object {path} already exists.")
                with self.state.begin() as conn:
                    self._ensure_parents(req, path, parents, conn)
                    self.names[path] = {"kind": "namespace", "owner": req.client["id"], "burned": False}
                    self._save_name(conn, path)
                return Response(201, (path + "\n").encode(), [("Location", path),
                                                               ("Content-Type", "text/uri-list")])
            if node is not None:
                self._require_owner(req, path, node["owner"])
            self._check_preconditions(req, path)
        if req.content_length is None:
            raise HTTPError(411, "Content-Length required.")
        if req.content_length > self.max_payload:
            raise HTTPError(413, f"Request body of {req.content_length} bytes exceeds the limit.")
        want_md5 = parse_hash(req.header("Content-MD5"), 16, "Content-MD5")
        want_sha = parse_hash(req.header("Content-SHA256"), 32, "Content-SHA256")
        disposition = req.header("Content-Disposition")
        if disposition is not None and not DISPOSITION.match(disposition):
            raise HTTPError(400, f"Invalid Content-Disposition {disposition!r}.")
        # the name exists before the body is read, as in Hatrac: a body cut short or failing its MD5 check
        # leaves it without content
        with self.lock:
            if path not in self.names:
                with self.state.begin() as conn:
                    self._ensure_parents(req, path, parents, conn)
                    self.names[path] = {"kind": "object", "owner": req.client["id"], "burned": False}
                    self._save_name(conn, path)
        check_storable(path, new_id())
        tmp, md5, size = self._receive(req, Path(self.state.objects_dir))
        try:
            if want_md5 is not None and md5 != want_md5:
                raise HTTPError(400, f"Received content MD5 {md5!r} does not match expected {want_md5!r}.")
            with self.lock:
                self._check_preconditions(req, path)
                if self.names[path]["burned"]:
                    raise HTTPError(409, f"Name {path} not available.")
                version = new_id()
                os.replace(tmp, self.state.objects_dir / version)
                tmp = None
                self._add_version(path, version, size, want_md5, want_sha, ctype, disposition)
        finally:
            if tmp is not None:
                os.unlink(tmp)
        loc = f"{path}:{version}"
        return Response(201, (loc + "\n").encode(), [("Location", loc), ("Content-Type", "text/uri-list")])

    def _check_preconditions(self, req: Request, path: str) -> None:
        cur = self.current(path)
        inm = req.header("If-None-Match")
        if inm is not None and inm.strip() == "*" and cur is not None:
            raise HTTPError(412, "Resource state does not match requested preconditions.",
                            {"ETag": f'"{cur["version"]}"'})
        im = req.header("If-Match")
        if im is not None:
            tags = {t.strip().strip('"') for t in im.split(",")}
            if cur is None or ("*" not in tags and cur["version"] not in tags):
                raise HTTPError(412, "Resource state does not match requested preconditions.")

    def _receive(self, req: Request, directory: Path) -> tuple[str, bytes, int]:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".incoming-")
        md5 = hashlib.md5()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for block in req.iter_body():
                    md5.update(block)
                    out.write(block)
                    size += len(block)
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp, md5.digest(), size

    def _add_version(self, path, version, size, md5, sha, ctype, disposition) -> dict:
        self._seq += 1
        rec = {"path": path, "version": version, "seq": self._seq, "size": size, "md5": b64(md5),
               "sha256": b64(sha), "content_type": ctype, "disposition": disposition, "deleted": False}
        with self.state.begin() as conn:  # bare SQL on the transaction's own connection: a PUT's hot path
            conn.connection.driver_connection.execute(
                "INSERT INTO hatrac_versions (path, version, seq, size, md5, sha256, content_type, disposition,"
                " deleted) VALUES (:path, :version, :seq, :size, :md5, :sha256, :content_type, :disposition,"
                " :deleted)", rec)
        self.versions.setdefault(path, []).append(rec)
        return rec

    def _get(self, req: Request, path: str, version: str | None) -> Response:
        with self.lock:
            if path == "/hatrac" or (self.names.get(path) or {}).get("kind") == "namespace":
                if req.client is None and path == "/hatrac":
                    raise HTTPError(401, f"Authentication required for access to {path}.")
                prefix = path + "/"
                children = sorted(p for p, n in self.names.items()
                                  if p.startswith(prefix) and "/" not in p[len(prefix):] and not n["burned"])
                return Response.json(200, children)
            node = self.names.get(path)
            if node is None or node["burned"]:
                raise HTTPError(404, f"Resource {path} not found.")
            if version:
                rec = next((v for v in self.versions.get(path, [])
                            if v["version"] == version and not v["deleted"]), None)
                if rec is None:
                    raise HTTPError(404, f"Resource {path}:{version} not found.")
            else:
                rec = self.current(path)
                if rec is None:
                    raise HTTPError(409, f"Object {path} currently has no content.")
        etag = f'"{rec["version"]}"'
        inm = req.header("If-None-Match")
        if inm and (inm.strip() == "*" or etag in [t.strip() for t in inm.split(",")]):
            return Response(304, headers=[("ETag", etag)])
        file = self.state.objects_dir / rec["version"]
        actual = file.stat().st_size if file.exists() else 0
        basename = path.rsplit("/", 1)[-1]
        headers = [
            ("Content-Type", rec["content_type"] or "application/octet-stream"),
            ("Content-Location", f"{path}:{rec['version']}"),
            ("content-disposition", rec["disposition"] or f"filename*=UTF-8''{quote(unquote(basename))}"),
            ("ETag", etag),
            ("Vary", "cookie,Accept-Encoding"),
            ("accept-ranges", "bytes"),
        ]
        rng = req.header("Range")
        accept_encoding = (req.header("Accept-Encoding") or "").lower()
        if not rng and "gzip" in accept_encoding and rec["content_type"] in self.compressed_types:
            # the front end compresses: no hash headers, a -gzip ETag, the compressed length
            gz = self._gzipped(rec["version"], file)
            size = gz.stat().st_size
            headers = [(k, v) for k, v in headers if k != "ETag"]
            headers += [("ETag", f'"{rec["version"]}-gzip"'), ("Content-Encoding", "gzip")]
            if req.method == "HEAD":
                headers.append(("Content-Length", str(size)))
                return Response(200, headers=headers, head_only_length=False, file=(str(gz), 0, 0))
            return Response(200, headers=headers, file=(str(gz), 0, size))
        if rng and req.method == "GET":
            span = _parse_range(rng, actual)
            if span is not None:
                start, end = span
                headers.append(("Content-Range", f"bytes {start}-{end}/{actual}"))
                return Response(206, headers=headers, file=(str(file), start, end - start + 1))
        if rec["md5"]:
            headers.append(("content-md5", rec["md5"]))
        if rec["sha256"]:
            headers.append(("content-sha256", rec["sha256"]))
        if req.method == "HEAD":
            if rec["size"]:
                headers.append(("Content-Length", str(rec["size"])))
            return Response(200, headers=headers, head_only_length=False, file=(str(file), 0, 0))
        return Response(200, headers=headers, file=(str(file), 0, actual))

    def _gzipped(self, version: str, file: Path) -> Path:
        """The compressed copy of a version's bytes, made once."""
        gz = self.state.objects_dir / f"{version}.gz"
        if not gz.exists():
            fd, tmp = tempfile.mkstemp(dir=self.state.objects_dir, prefix=".gzip-")
            with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out, \
                    open(file, "rb") as src:
                while block := src.read(BLOCK):
                    out.write(block)
            os.replace(tmp, gz)
        return gz

    def _delete(self, req: Request, path: str, version: str | None) -> Response:
        with self.lock:
            node = self.names.get(path)
            if node is None or node["burned"]:
                raise HTTPError(404, f"Resource {path} not found.")
            self._require_owner(req, path, node["owner"])
            with self.state.begin() as conn:
                if version:
                    rec = next((v for v in self.versions.get(path, [])
                                if v["version"] == version and not v["deleted"]), None)
                    if rec is None:
                        raise HTTPError(404, f"Resource {path}:{version} not found.")
                    self._drop_version(conn, rec)
                    return Response(204)
                if node["kind"] == "namespace":
                    if any(p.startswith(path + "/") and not n["burned"] for p, n in self.names.items()):
                        raise HTTPError(409, f"Namespace {path} not empty.")
                for rec in self.versions.get(path, []):
                    if not rec["deleted"]:
                        self._drop_version(conn, rec)
                node["burned"] = True
                self._save_name(conn, path)
        return Response(204)

    def _drop_version(self, conn, rec: dict) -> None:
        rec["deleted"] = True
        conn.execute(sa.update(S.hatrac_versions).where(
            S.hatrac_versions.c.path == rec["path"], S.hatrac_versions.c.version == rec["version"]
        ).values(deleted=True))
        for name in (rec["version"], f"{rec['version']}.gz"):
            try:
                os.unlink(self.state.objects_dir / name)
            except FileNotFoundError:
                pass

    # --- sub-resources --------------------------------------------------------------

    def _sub(self, req: Request, path: str, sub: str) -> Response:
        parts = sub.split("/")
        kind = parts[0]
        if kind == "upload":
            return self._upload(req, path, parts[1:])
        with self.lock:
            node = self.names.get(path)
            if node is None or node["burned"]:
                raise HTTPError(404, f"Resource {path} not found.")
            if kind == "acl" and req.method == "PUT" and parts[1:] == ["create"] and node["kind"] == "namespace":
                self._require_owner(req, path, node["owner"])
                try:
                    roles = json.loads(req.body())
                    assert isinstance(roles, list) and all(isinstance(r, str) for r in roles)
                except (ValueError, AssertionError):
                    raise HTTPError(400, "Bad request. Detail: an ACL is a JSON list of roles.") from None
                node["create"] = roles
                with self.state.begin() as conn:
                    self._save_name(conn, path)
                return Response(204)
            if req.method != "GET":
                raise HTTPError(405, "Method not allowed.")
            if kind == "versions":
                live = [v for v in self.versions.get(path, []) if not v["deleted"]]
                return Response.json(200, [f"{path}:{v['version']}" for v in reversed(live)])
            if kind == "metadata":
                rec = self.current(path)
                if rec is None:
                    raise HTTPError(409, f"Object {path} currently has no content.")
                meta = {"content-type": rec["content_type"]}
                if rec["md5"]:
                    meta["content-md5"] = rec["md5"]
                if rec["sha256"]:
                    meta["content-sha256"] = rec["sha256"]
                if rec["disposition"]:
                    meta["content-disposition"] = rec["disposition"]
                if len(parts) > 1:
                    if parts[1] not in meta:
                        raise HTTPError(404, f"Resource {path};metadata/{parts[1]} not found.")
                    return Response.text(200, meta[parts[1]])
                return Response.json(200, meta)
            if kind == "acl":
                owner = [node["owner"]] if node["owner"] else []
                if node["kind"] == "namespace":
                    doc = {"owner": owner, "create": list(node.get("create", [])), "read": [],
                           "subtree-owner": [], "subtree-create": [], "subtree-read": [], "subtree-update": []}
                else:
                    doc = {"owner": owner, "update": [], "read": [], "subtree-owner": [], "subtree-read": []}
                if len(parts) > 1 and parts[1]:
                    return Response.json(200, doc.get(parts[1], []))
                return Response.json(200, doc)
        raise HTTPError(404, f"Resource {path};{sub} not found.")

def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end) of a single byte range; None to ignore; 416/501 raised."""
    m = re.fullmatch(r"\s*bytes=([^,]*)\s*", header)
    if not m:
        if header.strip().startswith("bytes=") and "," in header:
            raise HTTPError(501, "Multiple byte ranges are not supported.")
        return None
    spec = m.group(1).strip()
    rm = re.fullmatch(r"(\d*)-(\d*)", spec)
    if not rm or (rm.group(1) == "" and rm.group(2) == ""):
        return None
    first, last = rm.group(1), rm.group(2)
    if first == "":
        n = int(last)
        if n == 0 or size == 0:
            raise HTTPError(416, "Requested range not satisfiable.", {"Content-Range": f"bytes */{size}"})
        return max(size - n, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if end < start:
        return None
    if start >= size:
        raise HTTPError(416, "Requested range not satisfiable.", {"Content-Range": f"bytes */{size}"})
    return start, min(end, size - 1)
