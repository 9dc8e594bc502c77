"""Export and import of bundles: plan what goes, write the bag; verify the whole bag, then apply it.

Export reads the journal in one snapshot, writes the records to a temp file,
then streams them and every needed object (each checked against its blake3 as
it is read from the cache) into the bag. Import stages and hashes every
payload file, compares every digest, parses every record, and only then
changes the store: objects into the cache (one filesystem sync), then all rows
in one journal transaction, which also records the bundle's id, so a second
import of it changes nothing. A crash before that transaction leaves at most
objects nothing names yet; the next import does the rest.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from satchel import errors
from satchel._crashpoints import crash_point
from satchel.bundle import records as rec_mod
from satchel.bundle.bag import BagWriter, read_bag
from satchel.bundle.check import check_identities, check_records, read_records
from satchel.bundle.merge import Merger
from satchel.cache import Digest
from satchel.cache.durable import sync_filesystem
from satchel.journal import queries as q
from satchel.journal import read_transaction, write_transaction
from satchel.journal.models import BundleRecord
from satchel.journal.resolve import asset_id as resolve_asset
from satchel.journal.resolve import row_id
from satchel.rid import is_provisional
from satchel.store import now
from satchel.sync.result import ProgressEvent

Progress = Callable[[ProgressEvent], None]
RECORDS = "satchel/records.jsonl"
HEADER = "satchel/bundle.json"
KINDS = ("outbound", "offline")


@dataclass
class BundleReport:
    """What an export wrote or an import applied."""

    path: str
    bundle_id: str
    kind: str
    records: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    object_bytes: int = 0
    applied: dict[str, int] = field(default_factory=dict)
    already_imported: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "bundle_id": self.bundle_id, "kind": self.kind, "records": self.records,
                "objects": self.objects, "object_bytes": self.object_bytes, "applied": self.applied,
                "already_imported": self.already_imported, "warnings": self.warnings}


# --- export -----------------------------------------------------------------------------------------------------


def export_bundle(ml: Any, out: os.PathLike[str] | str, **options: Any) -> BundleReport:
    """Write a bundle at ``out`` (``.zip`` or ``.tar``), no gc removing the objects it reads meanwhile.
    See ``DerivaML.export_bundle``."""
    with ml.store.cache.use.shared():
        return _export_bundle(ml, out, **options)


def _export_bundle(ml: Any, out: os.PathLike[str] | str, *, executions: Sequence[str] = (), since: str | None = None,
                  for_offline: bool = False, assets: Sequence[str] = (), tables: Sequence[str] = (),
                  rid_pool: int = 0, mirror: bool = True, remote: Any = None,
                  progress: Progress | None = None) -> BundleReport:
    """Write a bundle at ``out`` (``.zip`` or ``.tar``). See ``DerivaML.export_bundle``."""
    store = ml.store
    out = Path(out).expanduser().absolute()
    if out.exists() and out.is_dir():
        raise errors.BundleError(f"{out} is a directory; name the bundle file to write, e.g. {out / 'work.zip'}")
    if not out.parent.is_dir():
        raise errors.BundleError(f"{out.parent} does not exist; create the folder, or write the bundle elsewhere")
    kind = "offline" if for_offline else "outbound"
    if not for_offline and (assets or tables or rid_pool or not mirror):
        raise errors.BundleError("--asset, --table, --rid-pool and --no-mirror choose what an offline store gets; "
                                 "add --for-offline")
    if for_offline and since:
        raise errors.BundleError("--since chooses unsent work for an outbound bundle; drop it with --for-offline")
    since = _instant_text(since) if since else None
    progress = progress or (lambda event: None)
    leases: list[str] = []
    if for_offline:
        _prefetch(ml, assets, tables, executions, remote, progress)
        if rid_pool:
            leases = _lease(ml, rid_pool, remote)
    bundle_id = uuid.uuid4().hex
    with read_transaction(store.engine) as conn:
        info = q.store_info(conn)
        exe_ids = [row_id(conn, r, "execution", "check the RID (satchel ls)") for r in executions]
        if for_offline:
            chosen_assets = {resolve_asset(conn, r) for r in assets}
            for t in tables:
                chosen_assets |= set(conn.execute(select(q.assets_t.c.id).where(q.assets_t.c.asset_table == t)).scalars())
            more_assets, chosen_exes, _ = rec_mod.execution_selection(conn, exe_ids)
            conf_assets, conf_exes, conf_wfs = rec_mod.confirmation_selection(conn)
            rows = rec_mod.mirror_records(conn, chosen_assets | more_assets | conf_assets, chosen_exes | conf_exes,
                                          conf_wfs, everything=mirror)
            wanted_bytes = {rid for part in q.chunks(sorted(chosen_assets | more_assets)) for rid in conn.execute(
                select(q.assets_t.c.rid).where(q.assets_t.c.id.in_(part))).scalars()}
        elif exe_ids:
            rows = rec_mod.records(conn, *rec_mod.execution_selection(conn, exe_ids))
            wanted_bytes = None
        else:
            rows = rec_mod.records(conn, *rec_mod.pending_selection(conn, since))
            wanted_bytes = None
        tmp_records = Path(store.cache.tmp_dir) / f"bundle-records-{bundle_id}.jsonl"
        counts: dict[str, int] = {}
        objects: dict[str, Digest] = {}
        provisional_executions = 0
        with open(tmp_records, "w", encoding="utf-8") as f:
            for r in _with_leases(rows, leases):
                counts[r["t"]] = counts.get(r["t"], 0) + 1
                if r["t"] == "execution" and r["state"] == "local" and is_provisional(r["rid"]):
                    provisional_executions += 1
                if r["t"] == "asset" and r.get("blake3"):
                    needs = r["state"] == "local" if wanted_bytes is None else r["rid"] in wanted_bytes
                    if needs:
                        objects[r["blake3"]] = Digest(r["blake3"], r["md5"], int(r["length"]))
                        r["object"] = f"objects/{r['blake3']}"
                f.write(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n")
    header = {"format": rec_mod.FORMAT, "version": rec_mod.VERSION, "kind": kind, "bundle_id": bundle_id,
              "created_at": now(), "satchel": _version(), "source_store": store.store_id,
              "catalog": {"host": info.get("hostname"), "catalog_id": info.get("catalog_id")},
              "records": counts, "objects": len(objects), "object_bytes": sum(d.size for d in objects.values())}
    report = BundleReport(str(out), bundle_id, kind, counts, len(objects), header["object_bytes"])
    if provisional_executions and not for_offline:
        report.warnings.append(
            f"{provisional_executions} execution(s) have provisional RIDs (none leased from the catalog was left): "
            "push this bundle from one connected store only, or two execution rows result; a --for-offline "
            "bundle with --rid-pool gives this store leased RIDs (docs/airgap.md)")
    try:
        _write(store, out, header, tmp_records, objects, progress)
    finally:
        tmp_records.unlink(missing_ok=True)
    with write_transaction(store.engine) as conn:
        conn.execute(insert(BundleRecord).values(bundle_id=bundle_id, direction="export", kind=kind,
                                                 peer_store=None, created_at=header["created_at"], recorded_at=now(),
                                                 summary=report.to_json()))
    return report


def _instant_text(value: str) -> str:
    """``--since`` as the journal writes times (ISO 8601, UTC), so that text order is time order."""
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise errors.BundleError(f"--since {value!r} is not an ISO 8601 time; give e.g. 2026-12-01 or "
                                 "2026-12-01T09:30+01:00") from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()


def _with_leases(rows: Iterator[dict[str, Any]], leases: list[str]) -> Iterator[dict[str, Any]]:
    yield from rows
    for rid in leases:
        yield {"t": "lease", "rid": rid}


def _write(store: Any, out: Path, header: dict[str, Any], records: Path, objects: dict[str, Digest],
           progress: Progress) -> None:
    writer = BagWriter(out, out.name.split(".")[0] or "bundle")
    on_bytes = _byte_counter(progress, "bundle objects", header["object_bytes"])
    try:
        data = json.dumps(header, indent=1).encode()
        writer.add_payload(HEADER, io.BytesIO(data), len(data), compress=True)
        with open(records, "rb") as f:
            writer.add_payload(RECORDS, f, os.fstat(f.fileno()).st_size, compress=True)
        for b3, digest in objects.items():
            path = store.cache.path_of(digest)
            try:
                src = open(path, "rb")
            except FileNotFoundError:
                raise errors.ObjectMissingError(
                    f"the bytes of object {digest.short} ({digest.size} bytes) are not in the cache at "
                    f"{store.cache.root}; run `satchel verify` to see which assets lost their bytes") from None
            with src:  # the journal's MD5 goes in the manifest: these are the bytes it was computed from
                got = writer.add_payload(f"objects/{b3}", src, digest.size, md5=digest.md5, on_bytes=on_bytes)
            if got != digest.blake3:
                store.cache.verify_object(digest)  # quarantines it, and says so
                raise errors.IntegrityError(f"cached object {digest.short} is corrupt; nothing was exported")
        writer.close({"Bag-Software-Agent": f"satchel {_version()}", "Bagging-Date": header["created_at"][:10],
                      "External-Identifier": header["bundle_id"], "Satchel-Bundle-Kind": header["kind"],
                      "Satchel-Bundle-Format": str(header["version"])})
    except BaseException:
        writer.abort()
        raise


def _byte_counter(progress: Progress, step: str, total: int) -> Callable[[int], None]:
    """A callback adding up bytes and reporting the running total as ``step``."""
    done = 0

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        progress(ProgressEvent(step, done, total, "bytes"))

    return on_bytes


def _prefetch(ml: Any, assets: Sequence[str], tables: Sequence[str], executions: Sequence[str], remote: Any,
              progress: Progress) -> None:
    """Bytes an offline bundle must carry and the cache lacks: fetched first, from the store's server."""
    plan = ml.pull_plan(assets=assets, tables=tables, executions=executions) if (assets or tables or executions) else {}
    if plan.get("fetch_objects"):
        ml.pull(remote=remote, assets=assets, tables=tables, executions=executions, metadata=False,
                progress=progress)


def _lease(ml: Any, count: int, remote: Any) -> list[str]:
    own = remote is None
    remote = remote if remote is not None else ml.connect()
    try:
        ids = [f"satchel-{ml.store.store_id}-bundle-{uuid.uuid4().hex}" for _ in range(count)]
        return list(remote.catalog.lease_rids(ids).values())
    finally:
        if own:
            remote.close()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("satchel")
    except PackageNotFoundError:
        return "unknown"


# --- import -----------------------------------------------------------------------------------------------------


class _Seen(Exception):
    """The bundle's header names one already imported here: stop reading it."""


def import_bundle(ml: Any, path: os.PathLike[str] | str, *, progress: Progress | None = None) -> BundleReport:
    """Verify the bundle at ``path`` entirely, then apply it, no gc removing the objects it finds already
    cached before its rows name them. See ``DerivaML.import_bundle``."""
    with ml.store.cache.use.shared():
        return _import_bundle(ml, path, progress=progress)


def _import_bundle(ml: Any, path: os.PathLike[str] | str, *, progress: Progress | None = None) -> BundleReport:
    store = ml.store
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise errors.BundleError(f"{path} is not a file; name the bundle to import (a .zip or .tar)")
    progress = progress or (lambda event: None)
    with read_transaction(store.engine) as conn:
        info = q.store_info(conn)
        imported = set(conn.execute(select(BundleRecord.bundle_id).where(BundleRecord.direction == "import")).scalars())
    header: dict[str, Any] = {}

    def check_header(rel: str, data: bytes) -> None:
        if rel != f"data/{HEADER}":
            return
        header.update(_parse_header(path, data, info))
        if header["bundle_id"] in imported:
            raise _Seen

    staging = Path(store.cache.tmp_dir) / f"bundle-import-{uuid.uuid4().hex}"
    staging.mkdir()
    total = path.stat().st_size
    on_bytes = _byte_counter(progress, "bundle verify", total)
    try:
        try:
            bag = read_bag(path, staging, on_first=check_header, on_bytes=on_bytes)
        except _Seen:
            return BundleReport(str(path), header["bundle_id"], header["kind"], header.get("records", {}),
                                already_imported=True)
        progress(ProgressEvent("bundle verify", total, total, "bytes"))
        if not header:
            raise errors.BundleError(f"{path} has no {HEADER}; it is a BagIt bag but not a satchel bundle")
        records_file = bag.payload.get(f"data/{RECORDS}")
        if records_file is None:
            raise errors.BundleError(f"{path} has no {RECORDS}; the bundle is incomplete: export it again")
        objects = {rel.removeprefix("data/objects/"): p for rel, p in bag.payload.items()
                   if rel.startswith("data/objects/")}
        for name, p in objects.items():
            if p.blake3 != name:
                raise errors.BundleError(f"{path}: object {name[:12]} holds other bytes (blake3 {p.blake3[:12]}); "
                                         "the bundle was altered")
        extra = set(bag.payload) - {f"data/{RECORDS}", f"data/{HEADER}"} - {f"data/objects/{n}" for n in objects}
        if extra:
            raise errors.BundleError(f"{path}: unexpected payload file {sorted(extra)[0]}; not a bundle this satchel wrote")
        counts = check_records(path, records_file.path, objects, store.cache)
        with read_transaction(store.engine) as conn:
            check_identities(path, conn, records_file.path)
        _take_objects(store, objects)
        crash_point("bundle.import.after_objects")
        report = BundleReport(str(path), header["bundle_id"], header["kind"], counts, len(objects),
                              sum(p.size for p in objects.values()))
        at = now()
        with write_transaction(store.engine) as conn:
            if conn.execute(select(BundleRecord.bundle_id).where(
                    BundleRecord.bundle_id == header["bundle_id"], BundleRecord.direction == "import")).first():
                report.already_imported = True
                return report
            report.applied = _apply_records(conn, header, records_file.path, at)
            conn.execute(insert(BundleRecord).values(
                bundle_id=header["bundle_id"], direction="import", kind=header["kind"],
                peer_store=header.get("source_store"), created_at=header.get("created_at") or at, recorded_at=at,
                summary=report.to_json()))
        crash_point("bundle.import.after_rows")
        ml.workspace.forget_model()
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _apply_records(conn: Any, header: dict[str, Any], records: Path, at: str) -> dict[str, int]:
    """Merge every record, in order, inside the caller's transaction; what was applied, by kind."""
    merger = Merger(conn, header["bundle_id"], at, header["kind"])
    for r in read_records(records):
        merger.apply(r)
        crash_point("bundle.import.merge")
    merger.finish()
    return {k: v for k, v in sorted(merger.counts.items()) if v}


def _parse_header(path: Path, data: bytes, info: dict[str, str]) -> dict[str, Any]:
    try:
        header = json.loads(data)
    except ValueError as exc:
        raise errors.BundleError(f"{path}: {HEADER} is not JSON; not a satchel bundle") from exc
    if not isinstance(header, dict) or header.get("format") != rec_mod.FORMAT:
        raise errors.BundleError(f"{path} is not a satchel bundle (no {rec_mod.FORMAT!r} header)")
    version = header.get("version")
    if not isinstance(version, int) or version > rec_mod.VERSION:
        raise errors.BundleError(f"{path} was written by a newer satchel ({header.get('satchel')}, bundle format "
                                 f"{version}); this satchel reads format {rec_mod.VERSION}: upgrade satchel here")
    if header.get("kind") not in KINDS or not isinstance(header.get("bundle_id"), str):
        raise errors.BundleError(f"{path}: its header has no valid kind or id; not a bundle this satchel wrote")
    theirs = header.get("catalog") or {}
    for key, ours in (("host", info.get("hostname")), ("catalog_id", info.get("catalog_id"))):
        if ours is not None and theirs.get(key) is not None and str(theirs[key]) != str(ours):
            raise errors.BundleError(
                f"{path} holds work for catalog {theirs.get('catalog_id')} on {theirs.get('host')}, but this store "
                f"is for catalog {info.get('catalog_id')} on {info.get('hostname')}; import it into a store of that "
                "catalog (DerivaML(hostname, catalog_id))")
    return header


def _take_objects(store: Any, objects: dict[str, Any]) -> None:
    """Staged, verified payload files become cache objects by rename; one filesystem sync makes them durable."""
    if not objects:
        return
    cache = store.cache
    entries = []
    for name, p in objects.items():
        digest = Digest(name, p.md5, p.size)
        final = cache.path_of(digest)
        if final.exists():
            continue
        os.replace(p.path, final)  # staged read-only (bag._stage)
        entries.append((os.stat(final), digest, True))
    sync_filesystem(cache.objects_dir)  # the bytes and the renames, before any row names them
    if entries:
        cache.index.record(entries)


def peek_catalog(path: os.PathLike[str] | str) -> tuple[str, str]:
    """The (host, catalog id) a bundle is for, from its header alone (to make a store for a first import)."""
    from satchel.bundle.bag import members

    path = Path(path)
    for name, size, opener in members(path):
        if name.endswith(f"/data/{HEADER}") and size < (1 << 20):
            with opener() as f:
                header = _parse_header(path, f.read(), {})
            catalog = header.get("catalog") or {}
            if catalog.get("host") and catalog.get("catalog_id") is not None:
                return str(catalog["host"]), str(catalog["catalog_id"])
            break
    raise errors.BundleError(f"{path} does not say which catalog it is for; name the store with --store or "
                             "--host/--catalog")
