"""A stateful model of the offline API: register, commit, download, update, over one store.

Hypothesis drives a :class:`RuleBasedStateMachine` against a real store in a
temp directory, next to a small reference model (plain dicts and sets) of what
the journal must hold. After every step the invariants are checked against the
journal itself (SQL on ``journal.db``), the API (``find_assets``), and the
cache (``verify``):

* tags are sets: no duplicate ``(asset, term)`` row; the tags equal the model's;
* no duplicate ``(asset, execution)`` link, and the links equal the model's:
  every committed output is linked to its execution (``Output``, unless the
  execution had already read it: the catalog key is ``(asset, execution)``),
  every tracked download is linked to the execution that made it (``Input``,
  unless it had produced it), with the ``Input_File`` tag;
* every committed output carries ``Output_File`` (``update_asset`` keeps
  directional tags by default);
* the bytes of an asset are the bytes at commit: later edits to a symlinked
  original, or to a downloaded copy, change nothing;
* one asset row per ``(table, URL)``, and every cache object matches its digest.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from satchel import DerivaML
from satchel.errors import (
    CommitError,
    DuplicateAssetError,
    ExecutionError,
    MissingSourceError,
    UnknownTermError,
)
from satchel.mlschema import hatrac_url

pytestmark = pytest.mark.slow

INPUT_FILE, OUTPUT_FILE = "Input_File", "Output_File"
CUSTOM_TERMS = ["Prop_A", "Prop_B", "Prop_C"]
LATE_TERM = "Prop_Late"  # added by a rule part way through; unknown until then
TERM_POOL = [*CUSTOM_TERMS, "Model_File", "Metrics_File", OUTPUT_FILE, LATE_TERM]
TABLES = ["File", "Execution_Asset", "Image"]  # Image is not in a new store: first use adds it
NAMES = ["a.txt", "b.bin", "model.pt", "_implementations.log"]
RENAMED = {"_implementations.log": "-implementations.log"}
MAX_EXECUTIONS = 4
MAX_SOURCES = 5

payloads = st.sampled_from([b"", b"x", b"same bytes"]) | st.binary(max_size=48)


@dataclass
class Pending:
    table: str
    target: str
    mode: str  # new | symlink | copy
    staged: Path
    types: list[str]
    description: str | None
    source: Path | None = None
    data: bytes | None = None  # new: what was written (None: not yet); copy: bytes at registration


@dataclass
class ExeModel:
    exe: object
    state: str  # created | running | stopped | failed | committed
    in_block: bool = False
    names: set[tuple[str, str]] = field(default_factory=set)
    pending: list[Pending] = field(default_factory=list)


@dataclass
class AssetModel:
    table: str
    filename: str
    data: bytes
    description: str | None
    tags: set[str]
    links: dict[str, str]  # execution RID -> role
    produced_by: set[str] = field(default_factory=set)
    directional_dropped: bool = False


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


STATUS = {
    "created": "Created", "running": "Running", "stopped": "Stopped", "failed": "Failed",
    "committed": "Uploaded",
}


class StoreMachine(RuleBasedStateMachine):
    """One DerivaML store in a temp dir, and the reference model."""

    LINK_MODES: tuple[str, ...] = ("reflink", "hardlink", "copy")  # every mode, hardlink included (opt-in; the default is reflink, copy)
    #: overwrite downloaded files in place too (safe only when downloads are private copies)
    IN_PLACE = False

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="satchel-stateful-"))
        self.ml = DerivaML("example.org", "1", working_dir=self.tmp / "store", link_modes=self.LINK_MODES)
        self.journal = self.tmp / "store" / "journal.db"
        self.log = _Records()
        logging.getLogger("satchel").addHandler(self.log)
        self.ml.add_term("Workflow_Type", "Training", description="Model training")
        for t in CUSTOM_TERMS:
            self.ml.add_term("Asset_Type", t, description=f"custom term {t}")
        self.workflow = self.ml.create_workflow("train.py", "Training", description="trains")
        self.known_terms = {t.name for t in self.ml.list_vocabulary_terms("Asset_Type")}
        self.exes: dict[str, ExeModel] = {}
        self.assets: dict[str, AssetModel] = {}
        self.by_url: dict[tuple[str, str], str] = {}
        self.sources: dict[Path, bytes] = {}
        self.downloads: dict[Path, str] = {}  # path -> RID whose bytes must be there
        self.serial = 0

    def teardown(self) -> None:
        logging.getLogger("satchel").removeHandler(self.log)
        self.ml.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- helpers ------------------------------------------------------------------

    def _fresh_dir(self, kind: str) -> Path:
        self.serial += 1
        d = self.tmp / kind / str(self.serial)
        d.mkdir(parents=True)
        return d

    def _pick(self, data, items, label: str):
        return data.draw(st.sampled_from(sorted(items)), label=label)

    def _draw_types(self, data) -> list[str] | None:
        return data.draw(st.none() | st.lists(st.sampled_from(TERM_POOL), max_size=3), label="asset_types")

    def _expect_types(self, table: str, types: list[str] | None) -> tuple[list[str], bool]:
        """(the types a registration gets, whether they are all known terms)."""
        if table not in self.known_terms and table not in ("File", "Execution_Asset"):
            self.known_terms.add(table)  # _check_asset_table adds the new table's own term
        resolved = [table] if types is None else list(types)
        return resolved, all(t in self.known_terms for t in resolved)

    def _link(self, asset: AssetModel, exe_rid: str, role: str) -> None:
        asset.links.setdefault(exe_rid, role)  # (asset, execution) is unique: the first role stays

    def _count(self, table: str) -> int:
        db = sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True)
        try:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            db.close()

    def _registrable(self) -> list[str]:
        return [r for r, m in self.exes.items() if m.state != "created"]

    # --- executions -------------------------------------------------------------------

    @initialize()
    def a_run_in_progress(self) -> None:
        """Every sequence starts inside the `with` block of one execution."""
        exe = self.ml.create_execution(workflow=self.workflow, description="first")
        exe.__enter__()
        self.exes[exe.execution_rid] = ExeModel(exe, "running", in_block=True)

    @precondition(lambda self: len(self.exes) < MAX_EXECUTIONS)
    @rule(data=st.data())
    def create_execution(self, data) -> None:
        inputs: list[str] = []
        if self.assets and data.draw(st.booleans(), label="with_inputs"):
            inputs = data.draw(st.lists(st.sampled_from(sorted(self.assets)), max_size=2, unique=True), label="inputs")
        exe = self.ml.create_execution(workflow=self.workflow, assets=inputs, description="stateful")
        self.exes[exe.execution_rid] = ExeModel(exe, "created")
        for r in inputs:
            a = self.assets[r]
            self._link(a, exe.execution_rid, "Input")
            a.tags.add(INPUT_FILE)
            placed = exe.working_dir / "downloaded-assets" / a.table / r / a.filename
            assert placed.read_bytes() == a.data

    @precondition(lambda self: any(m.state == "created" for m in self.exes.values()))
    @rule(data=st.data())
    def start(self, data) -> None:
        r = self._pick(data, [r for r, m in self.exes.items() if m.state == "created"], "execution")
        m = self.exes[r]
        m.exe.__enter__()
        m.state, m.in_block = "running", True

    @precondition(lambda self: any(m.state == "running" for m in self.exes.values()))
    @rule(data=st.data(), fail=st.booleans())
    def end_block(self, data, fail) -> None:
        r = self._pick(data, [r for r, m in self.exes.items() if m.state == "running"], "execution")
        m = self.exes[r]
        if fail:
            m.exe.__exit__(RuntimeError, RuntimeError("boom"), None)
        else:
            m.exe.__exit__(None, None, None)
        m.state, m.in_block = ("failed" if fail else "stopped"), False

    @precondition(lambda self: bool(self.exes))
    @rule(data=st.data())
    def resume(self, data) -> None:
        """Reopen an execution from the journal (e.g. after a crash): a new object, same state."""
        r = self._pick(data, self.exes, "execution")
        m = self.exes[r]
        m.exe = self.ml.resume_execution(r)
        m.in_block = False  # the new object is not inside a `with` block

    # --- registering outputs ------------------------------------------------------------

    @precondition(lambda self: len(self.sources) < MAX_SOURCES)
    @rule(name=st.sampled_from(NAMES), payload=payloads)
    def make_source(self, name, payload) -> None:
        path = self._fresh_dir("src") / name
        path.write_bytes(payload)
        self.sources[path] = payload

    @precondition(lambda self: bool(self.sources))
    @rule(data=st.data(), payload=payloads)
    def edit_original(self, data, payload) -> None:
        """Rewrite a source file in place (it may be staged as a symlink, or already committed)."""
        path = self._pick(data, self.sources, "source")
        path.write_bytes(payload)
        self.sources[path] = payload

    def _register(self, m: ExeModel, table: str, target: str, types, call) -> Pending | None:
        resolved, known = self._expect_types(table, types)
        if not known:
            with pytest.raises(UnknownTermError):
                call()
            return None
        if (table, target) in m.names:
            with pytest.raises(DuplicateAssetError):
                call()
            return None
        afp = call()
        assert afp.asset_table == table and afp.file_name == target and afp.asset_rid is None
        assert afp.asset_types == resolved
        m.names.add((table, target))
        return Pending(table, target, "", Path(afp), resolved, None)

    @precondition(lambda self: bool(self._registrable()))
    @rule(data=st.data(), table=st.sampled_from(TABLES), name=st.sampled_from(NAMES), payload=payloads,
          write_now=st.booleans(), description=st.none() | st.text(max_size=10))
    def register_new_file(self, data, table, name, payload, write_now, description) -> None:
        m = self.exes[self._pick(data, self._registrable(), "execution")]
        types = self._draw_types(data)
        where = self._fresh_dir("nowhere") / name  # does not exist: the new-file mode
        if data.draw(st.booleans(), label="also_try_rename"):
            with pytest.raises(MissingSourceError):  # rename_file needs an existing file (F9)
                m.exe.asset_file_path("File", where, rename_file="renamed.txt")
        p = self._register(
            m, table, RENAMED.get(name, name), types,
            lambda: m.exe.asset_file_path(table, where, asset_types=types, description=description),
        )
        if p is None:
            return
        p.mode, p.description = "new", description
        assert not p.staged.exists()
        if write_now:
            p.staged.write_bytes(payload)
            p.data = payload
        m.pending.append(p)

    @precondition(lambda self: bool(self._registrable()) and bool(self.sources))
    @rule(data=st.data(), table=st.sampled_from(TABLES), copy=st.booleans(),
          rename=st.none() | st.sampled_from(NAMES), description=st.none() | st.text(max_size=10))
    def register_existing_file(self, data, table, copy, rename, description) -> None:
        m = self.exes[self._pick(data, self._registrable(), "execution")]
        source = self._pick(data, self.sources, "source")
        types = self._draw_types(data)
        target = rename if rename is not None else source.name
        p = self._register(
            m, table, RENAMED.get(target, target), types,
            lambda: m.exe.asset_file_path(
                table, source, asset_types=types, copy_file=copy, rename_file=rename, description=description
            ),
        )
        if p is None:
            return
        p.mode, p.description, p.source = ("copy" if copy else "symlink"), description, source
        if copy:
            p.data = self.sources[source]
            assert not p.staged.is_symlink() and p.staged.read_bytes() == p.data
        else:
            assert p.staged.is_symlink() and p.staged.resolve() == source.resolve()
        m.pending.append(p)

    @precondition(lambda self: any(p.data is None and p.mode == "new" for m in self.exes.values() for p in m.pending))
    @rule(data=st.data(), payload=payloads)
    def write_registered_file(self, data, payload) -> None:
        unwritten = [p for m in self.exes.values() for p in m.pending if p.mode == "new" and p.data is None]
        p = data.draw(st.sampled_from(unwritten), label="registration")
        p.staged.write_bytes(payload)
        p.data = payload

    @precondition(lambda self: LATE_TERM not in self.known_terms)
    @rule()
    def add_late_term(self) -> None:
        self.ml.add_term("Asset_Type", LATE_TERM, description="added part way through")
        self.known_terms.add(LATE_TERM)

    # --- commit -------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.exes))
    @rule(data=st.data())
    def commit(self, data) -> None:
        self._commit(self._pick(data, self.exes, "execution"))

    @precondition(lambda self: any(m.state == "running" for m in self.exes.values()))
    @rule(data=st.data())
    def end_block_and_commit(self, data) -> None:
        """The usual script: the `with` block ends, then commit_output_assets()."""
        r = self._pick(data, [r for r, m in self.exes.items() if m.state == "running"], "execution")
        m = self.exes[r]
        m.exe.__exit__(None, None, None)
        m.state, m.in_block = "stopped", False
        self._commit(r)

    def _commit(self, r: str) -> None:
        m = self.exes[r]
        assets_before = self._count("assets")
        if m.in_block:
            with pytest.raises(ExecutionError, match="inside the `with` block"):
                m.exe.commit_output_assets()
            return
        if m.state == "created":
            with pytest.raises(ExecutionError, match="only a run execution commits"):
                m.exe.commit_output_assets()
            return
        if m.state == "running":
            m.state = "stopped"  # a running execution outside its block is stopped first
        if any(p.mode == "new" and p.data is None for p in m.pending):
            with pytest.raises(CommitError, match="never written"):
                m.exe.commit_output_assets()
            assert self._count("assets") == assets_before, "a failed commit recorded assets"
            return
        report = m.exe.commit_output_assets()
        assert report.total_uploaded == len(m.pending) and report.total_failed == 0
        assert len(report.assets) == len(m.pending)
        for p, afp in zip(m.pending, report.assets, strict=True):
            if p.mode == "symlink":
                assert p.source is not None
                content = self.sources[p.source]  # the bytes at commit
            else:
                assert p.data is not None
                content = p.data
            md5 = hashlib.md5(content).hexdigest()
            url = hatrac_url(p.table, md5, p.target)
            assert afp.asset_rid is not None and OUTPUT_FILE in afp.asset_types
            known = self.by_url.get((p.table, url))
            if known is None:
                self.by_url[(p.table, url)] = afp.asset_rid
                self.assets[afp.asset_rid] = AssetModel(p.table, p.target, content, p.description, set(), {})
            else:
                assert afp.asset_rid == known, "same table, bytes and name must reuse the asset row"
            a = self.assets[afp.asset_rid]
            a.tags |= {*p.types, OUTPUT_FILE}
            a.produced_by.add(r)
            self._link(a, r, "Output")
        m.pending.clear()
        if m.state in ("stopped", "failed"):
            m.state = "committed"
        assert m.exe.commit_output_assets().total_uploaded == 0  # again: a no-op

    # --- inputs -------------------------------------------------------------------------------------

    def _download(self, exe_rid: str, asset_rid: str, dest_dir: Path):
        m, a = self.exes[exe_rid], self.assets[asset_rid]
        got = m.exe.download_asset(asset_rid, dest_dir)
        self._link(a, exe_rid, "Input")
        a.tags.add(INPUT_FILE)
        assert Path(got) == dest_dir / a.filename and got.asset_rid == asset_rid
        assert set(got.asset_types) == a.tags, "download_asset returns the tags current after the call"
        assert got.read_bytes() == a.data
        self.downloads[Path(got)] = asset_rid
        return got

    @precondition(lambda self: bool(self.exes) and bool(self.assets))
    @rule(data=st.data(), slot=st.integers(0, 2), twice=st.booleans(), plain=st.booleans())
    def download(self, data, slot, twice, plain) -> None:
        asset_rid = self._pick(data, self.assets, "asset")
        if plain:  # Asset.download: the bytes at commit, and no provenance recorded
            path = self.ml.lookup_asset(asset_rid).download(self._fresh_dir("plain"))
            assert path.read_bytes() == self.assets[asset_rid].data
            return
        exe_rid = self._pick(data, self.exes, "execution")
        dest_dir = self.tmp / "dl" / str(slot)  # few directories: names collide across assets
        got = self._download(exe_rid, asset_rid, dest_dir)
        if twice:
            before = os.lstat(got)
            n_warnings = len(self.log.messages)
            again = self._download(exe_rid, asset_rid, dest_dir)
            after = os.lstat(again)
            assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "not a no-op"
            assert len(self.log.messages) == n_warnings

    @precondition(lambda self: bool(self.downloads))
    @rule(data=st.data(), payload=payloads, how=st.sampled_from(["replace", "symlink", "in_place"]))
    def download_over_a_changed_file(self, data, payload, how) -> None:
        """The user changed a downloaded file; downloading again restores the asset's bytes, with a warning."""
        dest = self._pick(data, self.downloads, "download")
        asset_rid = self.downloads[dest]
        sentinel = self._fresh_dir("sentinel") / "keep.txt"
        sentinel.write_bytes(payload)
        if how == "in_place" and self.IN_PLACE:
            dest.write_bytes(payload)
        elif how == "symlink":
            dest.unlink()
            dest.symlink_to(sentinel)
        else:  # replace: never write into a file that may be a hardlink of a cache object
            dest.unlink()
            dest.write_bytes(payload)
        differs = how == "symlink" or payload != self.assets[asset_rid].data
        n_warnings = len(self.log.messages)
        exe_rid = self._pick(data, self.exes, "execution")
        self._download(exe_rid, asset_rid, dest.parent)
        assert sentinel.read_bytes() == payload, "download wrote through a symlink"
        assert not dest.is_symlink()
        if differs:
            assert any(asset_rid in msg for msg in self.log.messages[n_warnings:]), "no warning for replaced bytes"

    # --- update_asset ---------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.assets))
    @rule(data=st.data(), description=st.none() | st.text(max_size=10), keep_directional=st.booleans())
    def update_asset(self, data, description, keep_directional) -> None:
        asset_rid = self._pick(data, self.assets, "asset")
        a = self.assets[asset_rid]
        types = data.draw(
            st.none() | st.lists(st.sampled_from([*TERM_POOL, INPUT_FILE]), max_size=4), label="asset_types"
        )
        if types is None and description is None:
            with pytest.raises(ValueError):
                self.ml.update_asset(asset_rid)
            return
        if types is not None and not set(types) <= self.known_terms:
            with pytest.raises(UnknownTermError):
                self.ml.update_asset(asset_rid, types, description, keep_directional=keep_directional)
            return
        result = self.ml.update_asset(asset_rid, types, description, keep_directional=keep_directional)
        if types is not None:
            desired = set(types)
            if keep_directional:
                desired |= a.tags & {INPUT_FILE, OUTPUT_FILE}
            assert result.added == sorted(desired - a.tags)
            assert result.removed == sorted(a.tags - desired)
            if not {INPUT_FILE, OUTPUT_FILE} <= desired:
                a.directional_dropped = True
            a.tags = desired
        else:
            assert result.added == result.removed == []
        if description is not None:
            assert result.description_changed == (description != a.description)
            a.description = description

    # --- invariants -----------------------------------------------------------------------------------

    @invariant()
    def journal_has_no_duplicates(self) -> None:
        with sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True) as db:
            assert db.execute(
                "SELECT asset_id, term FROM asset_tags GROUP BY asset_id, term HAVING count(*) > 1"
            ).fetchall() == []
            assert db.execute(
                "SELECT asset_id, execution_id FROM asset_links GROUP BY asset_id, execution_id HAVING count(*) > 1"
            ).fetchall() == []
            assert db.execute(
                "SELECT asset_table, url FROM assets GROUP BY asset_table, url HAVING count(*) > 1"
            ).fetchall() == []
            assert db.execute("SELECT count(*) FROM assets").fetchone()[0] == len(self.assets)
        db.close()

    @invariant()
    def assets_match_the_model(self) -> None:
        seen = {}
        for asset in self.ml.find_assets():
            seen[asset.rid] = asset
        assert set(seen) == set(self.assets)
        cache = self.ml.store.cache
        with sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True) as db:
            blake3_of = dict(db.execute("SELECT rid, blake3 FROM assets").fetchall())
        db.close()
        for r, want in self.assets.items():
            got = seen[r]
            assert len(got.asset_types) == len(set(got.asset_types)), "tags are a set"
            assert set(got.asset_types) == want.tags
            assert len(got.executions) == len(want.links)
            assert {e.execution_rid: e.asset_role for e in got.executions} == want.links
            assert (got.asset_table, got.filename, got.description) == (want.table, want.filename, want.description)
            assert (got.length, got.md5) == (len(want.data), hashlib.md5(want.data).hexdigest())
            assert got.url == hatrac_url(want.table, got.md5, want.filename)
            assert cache.path_of(blake3_of[r]).read_bytes() == want.data, "asset bytes changed after commit"
            for exe_rid in want.produced_by:
                assert exe_rid in want.links, "a committed output is linked to its execution"
            if not want.directional_dropped:
                if want.produced_by:
                    assert OUTPUT_FILE in want.tags
                if any(role == "Input" for role in want.links.values()):
                    assert INPUT_FILE in want.tags

    @invariant()
    def downloads_hold_the_asset_bytes(self) -> None:
        for path, r in self.downloads.items():
            assert path.read_bytes() == self.assets[r].data

    @invariant()
    def statuses_match(self) -> None:
        for m in self.exes.values():
            assert m.exe.status.value == STATUS[m.state]

    @invariant()
    def cache_objects_match_their_digests(self) -> None:
        report = self.ml.verify()
        assert report.ok, report


class CopyModeMachine(StoreMachine):
    """Downloads as private copies, so users may also edit them in place."""

    LINK_MODES = ("copy",)
    IN_PLACE = True


StoreMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
CopyModeMachine.TestCase.settings = settings(max_examples=12, stateful_step_count=20, deadline=None)
TestStore = StoreMachine.TestCase
TestStoreCopyMode = CopyModeMachine.TestCase
