"""Hatrac's chunked upload jobs in the emulator (protocol §2.4).

A mixin of :class:`satchel.testing.hatrac.Hatrac`. The server keeps no record
of which chunks arrived: chunks are written at their offsets into one job
file, and finalize re-hashes the whole file against the job's ``content-md5``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

import sqlalchemy as sa

from satchel.testing import state as S
from satchel.testing.hatrac_common import DISPOSITION, b64, check_storable, new_id, parse_hash
from satchel.testing.httpd import BLOCK, HTTPError, Request, Response


class UploadJobs:
    """The ``obj;upload`` sub-resources."""

    def _upload(self, req: Request, path: str, parts: list[str]) -> Response:
        if not parts or parts == [""]:
            if req.method == "POST":
                return self._create_job(req, path)
            if req.method == "GET":
                self._require_write(req, path)
                ids = self._ids(req.client)
                return Response.json(200, [f"{j['path']};upload/{j['job']}" for j in self.jobs.values()
                                           if j["path"] == path and j["owner"] in ids])
            raise HTTPError(405, "Method not allowed.")
        job_id = parts[0]
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None or job["path"] != path:
                raise HTTPError(404, f"Resource {path};upload/{job_id} not found.")
        self._require_owner(req, path, job["owner"])
        if len(parts) == 2:
            if req.method == "PUT":
                return self._put_chunk(req, job, parts[1])
            raise HTTPError(405, "Method not allowed.")
        if req.method == "GET":
            return Response.json(200, {
                "url": f"{path};upload/{job_id}", "target": path, "owner": [job["owner"]],
                "chunk-length": job["chunk-length"], "content-length": job["content-length"],
                "content-type": job.get("content-type"), "content-md5": job.get("content-md5"),
                "content-sha256": job.get("content-sha256"),
                "content-disposition": job.get("content-disposition"),
            })
        if req.method == "POST":
            return self._finalize(req, job)
        if req.method == "DELETE":
            with self.lock:
                self._end_job(job)
            return Response(204)
        raise HTTPError(405, "Method not allowed.")

    def _create_job(self, req: Request, path: str) -> Response:
        self._require_write(req, path)
        try:
            doc = json.loads(req.body() or b"null")
            chunk = int(doc["chunk-length"])
            total = int(doc["content-length"])
            if chunk <= 0 or total < 0:
                raise ValueError
        except (ValueError, TypeError, KeyError):
            raise HTTPError(400, "Bad request. Detail: upload job needs chunk-length and content-length.") from None
        md5 = parse_hash(doc.get("content-md5"), 16, "content-md5")
        sha = parse_hash(doc.get("content-sha256"), 32, "content-sha256")
        disposition = doc.get("content-disposition")
        if disposition is not None and not DISPOSITION.match(disposition):
            raise HTTPError(400, f"Invalid content-disposition {disposition!r}.")
        parents = req.arg("parents") == "true"
        with self.lock:
            node = self._content_node(path)
            if node is not None:
                self._require_owner(req, path, node["owner"])
            job_id = new_id()
            job = {"job": job_id, "path": path, "owner": req.client["id"], "chunk-length": chunk,
                   "content-length": total, "content-type": doc.get("content-type") or "application/octet-stream",
                   "content-md5": b64(md5), "content-sha256": b64(sha), "content-disposition": disposition}
            if node is None:
                with self.state.begin() as conn:
                    self._ensure_parents(req, path, parents, conn)
                    self.names[path] = {"kind": "object", "owner": req.client["id"], "burned": False}
                    self._save_name(conn, path)
            check_storable(path, job_id)  # the job's file is the version's (version id = job id)
            with self.state.begin() as conn:
                conn.execute(sa.insert(S.hatrac_jobs).values(
                    job=job_id, path=path, owner=job["owner"],
                    doc=json.dumps({k: v for k, v in job.items() if k not in ("job", "path", "owner")})))
            (self.state.jobs_dir / job_id).touch()
            self.jobs[job_id] = job
        url = f"{path};upload/{job_id}"
        return Response(201, (url + "\n").encode(), [("Location", url), ("Content-Type", "text/uri-list")])

    def _put_chunk(self, req: Request, job: dict, index_text: str) -> Response:
        try:
            index = int(index_text)
            if index < 0:
                raise ValueError
        except ValueError:
            raise HTTPError(400, f"Invalid chunk number {index_text}.") from None
        k, n = job["chunk-length"], job["content-length"]
        nchunks = -(-n // k)
        if index >= nchunks:
            raise HTTPError(409, f"Uploaded chunk number {index} out of range.")
        if req.content_length is None:
            raise HTTPError(411, "Content-Length required.")
        if index < nchunks - 1 and req.content_length != k:
            raise HTTPError(409, f"Uploaded chunk byte count {req.content_length} does not match job chunk "
                                 f"size {k}.")
        want = parse_hash(req.header("Content-MD5"), 16, "Content-MD5")
        tmp, md5, _ = self._receive(req, self.state.jobs_dir)
        try:
            if want is not None and want != md5:
                raise HTTPError(400, f"Received content MD5 {md5!r} does not match expected {want!r}.")
            with self.lock:
                if job["job"] not in self.jobs:
                    raise HTTPError(404, f"Resource {job['path']};upload/{job['job']} not found.")
                with open(tmp, "rb") as src, open(self.state.jobs_dir / job["job"], "r+b") as dst:
                    dst.seek(index * k)
                    while block := src.read(BLOCK):
                        dst.write(block)
        finally:
            os.unlink(tmp)
        return Response(204)

    def _finalize(self, req: Request, job: dict) -> Response:
        if req.header("If-None-Match") is not None or req.header("If-Match") is not None:
            raise HTTPError(412, "Resource state does not match requested preconditions.", {"ETag": "None"})
        with self.lock:
            if job["job"] not in self.jobs:
                raise HTTPError(404, f"Resource {job['path']};upload/{job['job']} not found.")
            file = self.state.jobs_dir / job["job"]
            if job.get("content-md5"):
                md5 = hashlib.md5()
                with open(file, "rb") as f:
                    while block := f.read(BLOCK):
                        md5.update(block)
                want = base64.b64decode(job["content-md5"])
                if md5.digest() != want:
                    raise HTTPError(409, f"Current uploaded content MD5 {md5.hexdigest().encode()!r} does not "
                                         f"match expected {want.hex().encode()!r}.")
            node = self.names.get(job["path"])
            if node is None or node["burned"]:
                raise HTTPError(409, f"Name {job['path']} not available.")
            version = job["job"]
            os.replace(file, self.state.objects_dir / version)
            self._add_version(job["path"], version, job["content-length"],
                              base64.b64decode(job["content-md5"]) if job.get("content-md5") else None,
                              base64.b64decode(job["content-sha256"]) if job.get("content-sha256") else None,
                              job.get("content-type"), job.get("content-disposition"))
            self._end_job(job, keep_file=True)
        loc = f"{job['path']}:{version}"
        return Response(201, (loc + "\n").encode(), [("Location", loc), ("Content-Type", "text/uri-list")])

    def _end_job(self, job: dict, keep_file: bool = False) -> None:
        self.jobs.pop(job["job"], None)
        with self.state.begin() as conn:
            conn.execute(sa.delete(S.hatrac_jobs).where(S.hatrac_jobs.c.job == job["job"]))
        if not keep_file:
            try:
                os.unlink(self.state.jobs_dir / job["job"])
            except FileNotFoundError:
                pass
