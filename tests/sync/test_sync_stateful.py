"""A stateful model of offline work + sync: two machines, one catalog, faults and crashes in between.

Hypothesis drives a :class:`RuleBasedStateMachine` over real parts: a
:class:`DerivaServer` on loopback, a :class:`FaultProxy` in front of it, two
stores ("machines" A and B, real SQLite journals and caches) pointing at the
same catalog, and real subprocesses SIGKILLed at named crash points. Next to
them runs a small reference model (plain dicts and sets) of what the catalog
must hold once everything has been pushed.

Rules: record an execution with 1-3 small outputs (a small pool of
``(table, name, bytes)``, so the same file recorded on both machines is
deduplicated by URL); download an asset a machine knows (its own, or pulled
and prefetched) into a new execution; set an asset's tags or description;
push, pull or sync; arm a fault on the proxy (lost response, reset, 503
burst, 500, on one kind of request: those of test_push_faults, plus tag
deletes and Image rows), which the next push sending such a request meets;
push in a subprocess killed at a crash point (through the proxy too, so an
armed fault may meet it). Pulls read the catalog directly.

The model (what the catalog must hold after settling):

* one asset row per ``(table, URL)`` recorded anywhere, with its
  Filename, Length and MD5, and one live Hatrac version behind its URL;
* tags, as sets. To keep the model simple and order-independent, the
  user terms are *partitioned* between the machines: A only ever adds or
  removes ``Alpha``/``Beta``, B only ``Gamma``/``Delta`` (``update_asset`` on
  a machine sets its own terms and keeps every other tag it sees). So the
  catalog's tags of an asset are the union over machines of each machine's
  own final set, plus ``Output_File`` (every asset is somebody's output) and
  ``Input_File`` once any execution downloaded it (directional tags are
  never removed);
* one ``<Table>_Execution`` link per (asset, execution), with the role it was
  first given (``Output`` for a recorded output, ``Input`` for a download);
* one Execution row per execution (named by a unique description), status
  ``Uploaded``; one Workflow row (both machines use the same checksum);
* descriptions: only one machine (the first to edit it) edits an asset's
  description, so the catalog must hold its last value (None if never edited).

Checked after every step (cheap, against the catalog through a direct remote):
no duplicate asset per URL, tag per (asset, term), link per (asset,
execution); every asset row's URL has exactly one live Hatrac version and its
MD5/Length agree with the URL. At the end of each example (``teardown``, when
no step failed), both machines push without faults until the push is ``ok``
and ``sync_plan()`` is empty, then the catalog must equal the model and
``verify()`` must pass on both stores.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from syncsupport import KiB, make_remote, random_bytes
from test_push_crash import CRASH_POINTS, PUSH_SCRIPT
from test_push_faults import FAULTS
from test_push_faults import TARGETS as PUSH_TARGETS

from satchel import DerivaML, ExecutionConfiguration
from satchel.errors import ObjectMissingError
from satchel.mlschema import hatrac_url
from satchel.testing.proxy import FaultProxy
from satchel.testing.server import DerivaServer

pytestmark = pytest.mark.slow

MACHINES = ("A", "B")
OWN_TERMS = {"A": ("Alpha", "Beta"), "B": ("Gamma", "Delta")}
INPUT_FILE, OUTPUT_FILE = "Input_File", "Output_File"
TABLES = ("Model", "Image")
CHUNKS = {"chunked_threshold": 64 * KiB, "chunk_size": 32 * KiB}  # as PUSH_SCRIPT: big.bin goes in 4 chunks
MAX_CRASHES = 2  # per example: a crash is a subprocess start (slow)
#: the request kinds of test_push_faults, and the two a tags/description edit adds
TARGETS = {**PUSH_TARGETS, "tag-delete": ("DELETE", "_Asset_Type/"), "image-row": ("POST", "test-schema:Image?")}

#: (table, file name, bytes): same name with other bytes, same bytes under another name, one chunked file
POOL = [
    ("Model", "w.bin", random_bytes(1500, 1)),
    ("Model", "w.bin", random_bytes(1501, 2)),
    ("Model", "v.bin", random_bytes(1500, 1)),
    ("Model", "big.bin", random_bytes(100 * KiB + 7, 3)),
    ("Image", "a.png", random_bytes(300, 4)),
    ("Image", "a.png", random_bytes(301, 5)),
    ("Image", "b.png", b""),
]

machines = st.sampled_from(MACHINES)
outputs = st.lists(st.sampled_from(range(len(POOL))), min_size=1, max_size=3,
                   unique_by=lambda i: POOL[i][:2])  # one (table, name) per execution


def key_of(table: str, data: bytes, name: str) -> tuple[str, str]:
    return table, hatrac_url(table, hashlib.md5(data).hexdigest(), name)


def stepped(fn):
    """Mark the machine broken when a step raises, so teardown skips the final check (it would mask the error)."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        self.broken = True
        out = fn(self, *args, **kwargs)
        self.broken = False
        return out

    return wrapper


class SyncMachine(RuleBasedStateMachine):
    @initialize(picks_a=outputs, picks_b=outputs, data=st.data())
    def setup(self, picks_a, picks_b, data):
        self.broken = True
        self.tmp = Path(tempfile.mkdtemp(prefix="satchel-stateful-"))
        self.server = DerivaServer(self.tmp / "server").start()
        self.proxy = FaultProxy(self.server.url, timeout=30).start()
        self.via_proxy = make_remote(self.proxy.url, self.server.token)
        self.direct = make_remote(self.server.url, self.server.token)
        self.ml = {m: self._open(m) for m in MACHINES}
        for ml in self.ml.values():
            ml.add_term("Workflow_Type", "Training", description="training")
            for terms in OWN_TERMS.values():
                for t in terms:
                    ml.add_term("Asset_Type", t, description=f"term {t}")
        # the model
        self.assets: dict[tuple[str, str], tuple[str, bytes]] = {}  # key -> (file name, bytes)
        self.own_tags: dict[str, dict[tuple, set[str]]] = {m: defaultdict(set) for m in MACHINES}
        self.directional: dict[tuple, set[str]] = defaultdict(set)
        self.links: dict[tuple[tuple, str], str] = {}  # (key, execution description) -> first role
        self.executions: set[str] = set()
        self.descriptions: dict[tuple, tuple[str, str]] = {}  # key -> (editing machine, last value)
        self.counter = 0
        self.crashes = 0
        # work on both machines from the start, so early pushes and armed faults have something to meet
        self._record("A", picks_a, data)
        self._record("B", picks_b, data)
        self.broken = False

    def _open(self, m: str) -> DerivaML:
        return DerivaML("localhost", "1", working_dir=self.tmp / f"machine-{m}")

    def teardown(self):
        if not hasattr(self, "tmp"):
            return
        errors: list = []
        try:
            if not self.broken:
                self._settle_and_compare()
        finally:
            for ml in getattr(self, "ml", {}).values():
                ml.close()
            for remote in ("via_proxy", "direct"):
                if hasattr(self, remote):
                    getattr(self, remote).close()
            if hasattr(self, "proxy"):
                self.proxy.stop()
            if hasattr(self, "server"):
                errors = list(self.server.errors)
                self.server.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
        assert not errors, f"the emulator failed internally: {errors!r}"

    # --- offline work ------------------------------------------------------------------------

    def _execution(self, ml: DerivaML, m: str):
        self.counter += 1
        name = f"{m}-{self.counter}"
        wf = ml.create_workflow("train.py", "Training", checksum="sha256:train-v1")
        exe = ml.create_execution(ExecutionConfiguration(workflow=wf, description=name))
        self.executions.add(name)
        return exe, name

    def _link(self, key, exe_name: str, role: str) -> None:
        self.links.setdefault((key, exe_name), role)

    @rule(m=machines, picks=outputs, data=st.data())
    @stepped
    def record(self, m, picks, data):
        self._record(m, picks, data)

    @rule(m=machines, picks=outputs, data=st.data())
    @stepped
    def record_more(self, m, picks, data):  # twice the weight of the other rules
        self._record(m, picks, data)

    def _record(self, m, picks, data):
        ml = self.ml[m]
        exe, name = self._execution(ml, m)
        recorded = []
        with exe:
            for i in picks:
                table, fname, payload = POOL[i]
                tags = data.draw(st.sets(st.sampled_from(OWN_TERMS[m])), label=f"tags of {fname}")
                exe.asset_file_path(table, fname, asset_types=sorted(tags)).write_bytes(payload)
                recorded.append((key_of(table, payload, fname), fname, payload, tags))
        exe.commit_output_assets()
        for key, fname, payload, tags in recorded:
            self.assets[key] = (fname, payload)
            self.own_tags[m][key] |= tags
            self.directional[key].add(OUTPUT_FILE)
            self._link(key, name, "Output")

    def _known(self, m: str) -> list:
        """Assets machine ``m`` has in its journal (its own, or pulled), as (key, RID)."""
        return sorted(((a.asset_table, a.url), a.rid) for a in self.ml[m].find_assets())

    @rule(m=machines, data=st.data())
    @stepped
    def download(self, m, data):
        known = self._known(m)
        if not known:
            return
        key, rid = data.draw(st.sampled_from(known), label="asset")
        ml = self.ml[m]
        exe, name = self._execution(ml, m)
        with exe:
            try:
                exe.download_asset(rid, exe.working_dir / "in")
            except ObjectMissingError:  # metadata pulled, bytes not: prefetch (as the error says), then again
                event("download: prefetched first")
                result = ml.pull(remote=self.direct, assets=[rid], metadata=False)
                assert result.ok, result.failed
                exe.download_asset(rid, exe.working_dir / "in")
        exe.commit_output_assets()
        self.directional[key].add(INPUT_FILE)
        self._link(key, name, "Input")

    @rule(m=machines, data=st.data())
    @stepped
    def set_tags(self, m, data):
        known = self._known(m)
        if not known:
            return
        key, rid = data.draw(st.sampled_from(known), label="asset")
        mine = data.draw(st.sets(st.sampled_from(OWN_TERMS[m])), label="own tags")
        ml = self.ml[m]
        others = set(ml.lookup_asset(rid).asset_types) - set(OWN_TERMS[m])
        ml.update_asset(rid, asset_types=sorted(others | mine))
        self.own_tags[m][key] = set(mine)

    @rule(m=machines, data=st.data(), text=st.sampled_from(["first", "second", "third"]))
    @stepped
    def set_description(self, m, data, text):
        known = [(k, r) for k, r in self._known(m) if self.descriptions.get(k, (m,))[0] == m]
        if not known:
            return
        key, rid = data.draw(st.sampled_from(known), label="asset")
        self.ml[m].update_asset(rid, description=text)
        self.descriptions[key] = (m, text)

    # --- syncs, faults, crashes ------------------------------------------------------------------

    def _push(self, ml: DerivaML) -> None:
        """A push through the proxy: armed faults meet the requests they name."""
        applied = self.proxy.faults_applied
        result = ml.push(remote=self.via_proxy, **CHUNKS)
        if self.proxy.faults_applied > applied:
            event(f"push met a fault: {'ok' if result.ok else 'left work for the next push'}")

    @rule(m=machines, how=st.sampled_from(["push", "sync", "pull"]))
    @stepped
    def sync(self, m, how):
        ml = self.ml[m]
        if how == "push" or (how == "sync" and self.proxy.pending()):
            self._push(ml)
        if how == "pull" or (how == "sync" and self.proxy.pending()):
            ml.pull(remote=self.direct)  # pulls do not go through the faults armed for pushes
        elif how == "sync":
            ml.sync(remote=self.via_proxy, **CHUNKS)

    @rule(m=machines)
    @stepped
    def push(self, m):  # pushes get twice the weight of other rules (with ``sync``)
        self._push(self.ml[m])

    @rule(fault=st.sampled_from(sorted(FAULTS)), kind=st.sampled_from(sorted(TARGETS)))
    @stepped
    def arm_fault(self, fault, kind):
        """The next push (in process or in a crashing subprocess) that sends such a request meets the fault."""
        if self.proxy.pending() < 6:
            FAULTS[fault](self.proxy, *TARGETS[kind])

    @rule(m=machines, point=st.sampled_from(CRASH_POINTS))
    @stepped
    def crash_push(self, m, point):
        if self.crashes >= MAX_CRASHES:  # a subprocess start is slow: past the cap, an ordinary push
            self._push(self.ml[m])
            return
        self.crashes += 1
        applied = self.proxy.faults_applied
        self.ml[m].close()
        try:
            env = dict(os.environ, SYNC_SUPPORT=str(Path(__file__).parent), SATCHEL_CRASH_AT=point)
            done = subprocess.run(
                [sys.executable, "-c", PUSH_SCRIPT, str(self.tmp / f"machine-{m}"), self.proxy.url, self.server.token],
                capture_output=True, text=True, timeout=60, env=env,
            )
        finally:
            self.ml[m] = self._open(m)
        # killed there, or the point was never reached (nothing to send at that step): a normal push
        assert done.returncode in (-9, 0), done.stdout + done.stderr
        event(f"crash: {'killed' if done.returncode == -9 else 'point not reached'}")
        if self.proxy.faults_applied > applied:
            event("crashing push met a fault")

    # --- invariants ------------------------------------------------------------------------------

    def _rows(self, table: str, schema: str = "test-schema") -> list[dict]:
        return self.direct.catalog.get(schema, table, limit=None)

    def _live_versions(self, url: str) -> list[dict]:
        return [v for v in self.server.app.hatrac.versions.get(url, []) if not v.get("deleted")]

    @invariant()
    @stepped
    def no_duplicates_and_no_row_without_bytes(self):
        if not hasattr(self, "direct"):
            return
        for table in TABLES:
            rows = self._rows(table)
            urls = Counter(r["URL"] for r in rows)
            assert all(n == 1 for n in urls.values()), f"{table}: two rows for one URL: {urls}"
            for r in rows:
                assert r["URL"] == hatrac_url(table, r["MD5"], r["Filename"]), r
                live = self._live_versions(r["URL"])
                assert len(live) == 1, f"{table} {r['RID']}: {len(live)} live versions behind {r['URL']}"
            tags = Counter((t[table], t["Asset_Type"]) for t in self._rows(f"{table}_Asset_Type"))
            assert all(n == 1 for n in tags.values()), f"{table}: duplicate tags {tags}"
            links = Counter((x[table], x["Execution"]) for x in self._rows(f"{table}_Execution"))
            assert all(n == 1 for n in links.values()), f"{table}: duplicate links {links}"
        for path, versions in self.server.app.hatrac.versions.items():
            live = [v for v in versions if not v.get("deleted")]
            assert len(live) <= 1, f"{path}: {len(live)} live versions"

    # --- the end: settle, then the catalog must be the model ----------------------------------------

    def _settle(self) -> None:
        results = {}
        for _ in range(4):
            for m in MACHINES:
                results[m] = self.ml[m].push(remote=self.direct, **CHUNKS)
            if all(r.ok for r in results.values()) and all(self.ml[m].sync_plan().empty for m in MACHINES):
                break
        for m in MACHINES:
            plan = self.ml[m].sync_plan()
            assert results[m].ok and plan.empty and not plan.failed, (m, results[m].failed, plan.describe())
            assert self.ml[m].status()["conflicts"] == [], m

    def _settle_and_compare(self) -> None:
        self._settle()
        self.no_duplicates_and_no_row_without_bytes()
        exes = {e["RID"]: e for e in self.direct.catalog.get("deriva-ml", "Execution", limit=None)}
        names = Counter(e["Description"] for e in exes.values())
        assert all(n == 1 for n in names.values()), f"duplicate executions: {names}"
        assert set(names) == self.executions
        assert {e["Status"] for e in exes.values()} <= {"Uploaded"}, [(e["Description"], e["Status"]) for e in exes.values()]
        workflows = self.direct.catalog.get("deriva-ml", "Workflow", limit=None)
        assert len(workflows) == (1 if self.executions else 0), workflows
        hatrac_names = set()
        for table in TABLES:
            rows = {r["RID"]: r for r in self._rows(table)}
            by_key = {(table, r["URL"]): r for r in rows.values()}
            want = {k for k in self.assets if k[0] == table}
            assert set(by_key) == want, f"{table}: catalog has {sorted(by_key)}, model {sorted(want)}"
            for key, r in by_key.items():
                fname, payload = self.assets[key]
                assert (r["Filename"], r["Length"], r["MD5"]) == (fname, len(payload), hashlib.md5(payload).hexdigest())
                expected = self.descriptions.get(key, (None, None))[1]
                assert r["Description"] == expected, f"{key}: description {r['Description']!r}, model {expected!r}"
                hatrac_names.add(r["URL"])
            tags = defaultdict(set)
            for t in self._rows(f"{table}_Asset_Type"):
                tags[(table, rows[t[table]]["URL"])].add(t["Asset_Type"])
            for key in want:
                model = set().union(*(self.own_tags[m][key] for m in MACHINES)) | self.directional[key]
                assert tags[key] == model, f"{key}: catalog tags {sorted(tags[key])}, model {sorted(model)}"
            links = {((table, rows[x[table]]["URL"]), exes[x["Execution"]]["Description"]): x["Asset_Role"]
                     for x in self._rows(f"{table}_Execution")}
            model_links = {k: role for k, role in self.links.items() if k[0][0] == table}
            assert links == model_links, f"{table}: links {links}, model {model_links}"
        live = {p for p, vs in self.server.app.hatrac.versions.items() if any(not v.get("deleted") for v in vs)}
        assert live == hatrac_names, f"objects without rows: {sorted(live - hatrac_names)}"
        for m in MACHINES:
            report = self.ml[m].verify()
            assert report.ok, (m, report)


#: about 50 s on 2 cores; SATCHEL_STATEFUL_EXAMPLES=150 for a longer hunt (about 8 min)
SyncMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("SATCHEL_STATEFUL_EXAMPLES", 12)), stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestSyncStateful = SyncMachine.TestCase


# --- what the state machine found, pinned as plain tests ---------------------------------------------


def _one_run(ml: DerivaML, name: str, data: bytes, description: str = "run"):
    """One execution of the shared workflow writing ``name`` into Model; returns the asset's RID."""
    if "Training" not in {t.name for t in ml.list_vocabulary_terms("Workflow_Type")}:
        ml.add_term("Workflow_Type", "Training", description="training")
    wf = ml.create_workflow("train.py", "Training", checksum="sha256:train-v1")
    exe = ml.create_execution(ExecutionConfiguration(workflow=wf, description=description))
    with exe:
        exe.asset_file_path("Model", name).write_bytes(data)
    (asset,) = exe.commit_output_assets().assets
    return asset.asset_rid


def test_an_execution_of_a_pulled_workflow_is_pushed(new_store, remote):
    """B reuses the workflow it pulled from A's push: its execution must not wait for it forever."""
    a, b = new_store("A"), new_store("B")
    _one_run(a, "x.bin", random_bytes(100, 1))
    assert a.push(remote=remote).ok
    b.pull(remote=remote)
    _one_run(b, "y.bin", random_bytes(100, 2), "on B")
    result = b.push(remote=remote)
    assert result.ok and b.sync_plan().empty, result.failed
    assert len(remote.catalog.get("deriva-ml", "Workflow")) == 1
    assert {e["Description"]: e["Status"] for e in remote.catalog.get("deriva-ml", "Execution")}["on B"] == "Uploaded"


def test_a_description_edited_offline_over_a_row_another_machine_pushed_first(new_store, remote):
    """Same file on A and B; A edits its description offline; B pushes first: A's edit goes over B's row
    (the remote never changed the description A started from), no conflict."""
    a, b = new_store("A"), new_store("B")
    data = random_bytes(100, 1)
    rid = _one_run(a, "x.bin", data)
    _one_run(b, "x.bin", data)
    a.update_asset(rid, description="edited on A")
    assert b.push(remote=remote).ok
    result = a.push(remote=remote)
    assert result.ok, result.failed
    assert a.status()["conflicts"] == []
    assert [r["Description"] for r in remote.catalog.get("test-schema", "Model")] == ["edited on A"]


def test_a_description_set_on_both_machines_before_either_pushed_is_still_a_conflict(new_store, remote):
    a, b = new_store("A"), new_store("B")
    data = random_bytes(100, 1)
    rid_a, rid_b = _one_run(a, "x.bin", data), _one_run(b, "x.bin", data)
    b.update_asset(rid_b, description="B's")
    a.update_asset(rid_a, description="A's")
    assert b.push(remote=remote).ok
    result = a.push(remote=remote)
    assert [f.step for f in result.failed] == ["descriptions"] and len(a.status()["conflicts"]) == 1
    assert [r["Description"] for r in remote.catalog.get("test-schema", "Model")] == ["B's"]


def test_a_description_edited_after_a_push_died_past_its_insert(deriva_server, remote, tmp_path):
    """Killed right after the asset row went in; the description edited before the next push: no conflict."""
    store = tmp_path / "store"
    with DerivaML("localhost", "1", working_dir=store) as ml:
        rid = _one_run(ml, "x.bin", random_bytes(100, 1))
    env = dict(os.environ, SYNC_SUPPORT=str(Path(__file__).parent), SATCHEL_CRASH_AT="rows.Model.after_insert")
    crashed = subprocess.run([sys.executable, "-c", PUSH_SCRIPT, str(store), deriva_server.url, deriva_server.token],
                             capture_output=True, text=True, timeout=60, env=env)
    assert crashed.returncode == -9, crashed.stdout + crashed.stderr
    with DerivaML("localhost", "1", working_dir=store) as ml:
        ml.update_asset(rid, description="later")
        result = ml.push(remote=remote)
        assert result.ok, result.failed
    assert [r["Description"] for r in remote.catalog.get("test-schema", "Model")] == ["later"]


def test_pull_adopts_the_row_of_an_asset_whose_insert_never_happened(deriva_server, fault_proxy, new_store, remote):
    """B's push reserved a RID for its asset, then the insert failed; A pushed the same file; B pulls:
    B's asset adopts A's row (it used to hit the journal's unique (table, URL) and raise)."""
    a, b = new_store("A"), new_store("B")
    data = random_bytes(100, 1)
    _one_run(a, "x.bin", data)
    rid = _one_run(b, "x.bin", data)
    fault_proxy.fail(500, times=20, method="POST", path_contains="test-schema:Model?")
    with make_remote(fault_proxy.url, deriva_server.token) as flaky:
        assert not b.push(remote=flaky).ok
    fault_proxy.clear()
    assert a.push(remote=remote).ok
    assert b.pull(remote=remote).ok
    (row,) = remote.catalog.get("test-schema", "Model")
    assert b.lookup_asset(rid).rid == row["RID"] and len(list(b.find_assets("Model"))) == 1
    assert b.push(remote=remote).ok and b.sync_plan().empty
    assert len(remote.catalog.get("test-schema", "Model")) == 1


def test_a_workflow_whose_insert_never_happened_is_adopted(deriva_server, fault_proxy, new_store, remote):
    """A's push reserved a RID for the workflow, then the insert failed; B pushed the same workflow (same
    checksum); A's next push adopts B's row instead of inserting a second one."""
    a, b = new_store("A"), new_store("B")
    _one_run(a, "x.bin", random_bytes(100, 1))
    _one_run(b, "y.bin", random_bytes(100, 2))
    fault_proxy.fail(500, times=20, method="POST", path_contains="Workflow?")
    with make_remote(fault_proxy.url, deriva_server.token) as flaky:
        assert not a.push(remote=flaky).ok
    fault_proxy.clear()
    assert b.push(remote=remote).ok
    assert a.push(remote=remote).ok and a.sync_plan().empty
    assert len(remote.catalog.get("deriva-ml", "Workflow")) == 1
