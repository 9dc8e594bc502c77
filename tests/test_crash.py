"""A process killed in the middle of ``commit_output_assets`` leaves all of the commit or none of it.

Each test runs satchel in a real subprocess that registers and writes output
files, then commits them, and dies by SIGKILL on the way: at a named crash point
(``SATCHEL_CRASH_AT``, see ``satchel._crashpoints``) or after a random delay.
The store is then reopened and must hold either every asset of the commit (with
its ``Output`` link and ``Output_File`` tag) or none of them, with every asset's
bytes in the cache and no corrupt object. A fresh process then resumes the
execution and commits again: that completes it, and one more commit changes
nothing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from satchel import DerivaML
from workflows import config

pytestmark = pytest.mark.slow

TABLE = "Execution_Asset"
TAG = "Crash_Test"

WORKER = r"""
import json, os, sys, time

mode, store = sys.argv[1:3]
from satchel import DerivaML, ExecutionConfiguration

if mode == "run":  # register COUNT new files, write them, then commit; phases go to PHASE_FILE as they pass
    count, tag, phase_file = int(sys.argv[3]), sys.argv[4], sys.argv[5]
    fd = os.open(phase_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def phase(text):
        os.write(fd, f"{text}\n".encode())  # unbuffered: what a SIGKILL leaves is what happened

    def progress(p):  # deriva-ml's UploadProgress: files captured in "capture", then "commit"
        if p.phase != "capture":
            phase("cleaned")  # called after the journal commit and the staging clean-up
        elif p.bytes_completed == p.bytes_total:
            phase("captured")
        elif p.bytes_completed % 100 == 0:
            phase(f"capture {p.bytes_completed}")

    with DerivaML("example.org", "1", working_dir=store) as ml:
        ml.add_term("Asset_Type", "__TAG__", description="written by a crash test")
        ml.add_term("Workflow_Type", "Testing", description="tests")
        exe = ml.create_execution(ExecutionConfiguration(workflow=ml.create_workflow("t.py", "Testing"),
                                                         description=f"crash trial {tag}"))
        phase(f"rid {exe.rid}")
        with exe:
            for i in range(count):
                path = exe.asset_file_path("__TABLE__", f"out-{i:05d}.bin", asset_types=["__TAG__"])
                path.write_bytes(f"{tag} output {i}\n".encode())
        phase("commit")
        started = time.monotonic()
        clean = os.environ.get("CRASH_TEST_CLEAN", "1") == "1"  # "0": staged files are copied, not taken
        report = exe.commit_output_assets(progress_callback=progress, clean_folder=clean)
        seconds = time.monotonic() - started
        phase("returned")
    print(json.dumps({"rid": exe.rid, "committed": report.total_uploaded, "commit_s": seconds}))
elif mode == "resume":  # commit again what the journal holds for the execution
    rid = sys.argv[3]
    with DerivaML("example.org", "1", working_dir=store) as ml:
        report = ml.resume_execution(rid).commit_output_assets()
    print(json.dumps({"rid": rid, "committed": report.total_uploaded}))
""".replace("__TABLE__", TABLE).replace("__TAG__", TAG)


def content(tag: str, i: int) -> bytes:
    """The bytes the worker writes to output ``i``."""
    return f"{tag} output {i}\n".encode()


def name(i: int) -> str:
    return f"out-{i:05d}.bin"


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    script = tmp_path_factory.mktemp("crash-worker") / "worker.py"
    script.write_text(WORKER)
    return script


def _env(crash_at: str | None = None, *, clean: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SATCHEL_CRASH_AT"}
    if crash_at is not None:
        env["SATCHEL_CRASH_AT"] = crash_at
    env["CRASH_TEST_CLEAN"] = "1" if clean else "0"
    return env


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    phases: list[str]

    @property
    def rid(self) -> str:
        (rid,) = [p.split()[1] for p in self.phases if p.startswith("rid ")]
        return rid

    @property
    def last_phase(self) -> str:
        return self.phases[-1] if self.phases else "(none)"


def run_commit(
    worker: Path, store: Path, count: int, tag: str, phase_file: Path, *, crash_at: str | None = None,
    kill_after: float | None = None, clean: bool = True,
) -> Run:
    """Run the worker to its end, or SIGKILL it ``kill_after`` seconds after its commit began.

    ``clean=False`` commits without cleaning the staging folder, so the staged
    files are copied into the cache; by default they are taken by hardlink.
    """
    proc = subprocess.Popen(
        [sys.executable, str(worker), "run", str(store), str(count), tag, str(phase_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(crash_at, clean=clean),
    )
    try:
        if kill_after is not None:
            deadline = time.monotonic() + 60
            while not (phase_file.exists() and "commit\n" in phase_file.read_text()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.001)
            time.sleep(kill_after)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    phases = phase_file.read_text().splitlines() if phase_file.exists() else []
    return Run(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), phases)


def resume_commit(worker: Path, store: Path, rid: str) -> int:
    """Commit the execution again in a fresh process (no crash point); returns how many assets it committed."""
    proc = subprocess.run(
        [sys.executable, str(worker), "resume", str(store), rid],
        capture_output=True, env=_env(), timeout=120,
    )
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    return json.loads(proc.stdout)["committed"]


@dataclass(frozen=True)
class Snapshot:
    status: str
    committed_registrations: int  # rows with asset_id set: the commit deletes them, so always 0
    registrations: int
    outputs: dict[str, tuple[int, str, str]]  # file name -> (asset id, role, asset RID) linked to the execution
    tags: dict[int, frozenset[str]]
    links_per_asset: dict[int, int]
    assets: dict[int, str]  # asset id -> file name, the whole store
    asset_changes: int
    row_counts: tuple[int, ...]


def snapshot(store: Path, rid: str) -> Snapshot:
    """What the journal holds, read with plain SQL (after a DerivaML reopened it)."""
    db = sqlite3.connect(store / "journal.db")
    try:
        exe_id, status = db.execute("SELECT id, status FROM executions WHERE rid = ?", (rid,)).fetchone()
        regs = db.execute("SELECT asset_id FROM registrations WHERE execution_id = ?", (exe_id,)).fetchall()
        outputs = {
            filename: (asset_id, role, asset_rid)
            for filename, asset_id, role, asset_rid in db.execute(
                "SELECT a.filename, a.id, l.role, a.rid FROM asset_links l JOIN assets a ON a.id = l.asset_id"
                " WHERE l.execution_id = ?",
                (exe_id,),
            )
        }
        tags: dict[int, set[str]] = {}
        for asset_id, term in db.execute("SELECT asset_id, term FROM asset_tags"):
            tags.setdefault(asset_id, set()).add(term)
        dup_urls = db.execute(
            "SELECT asset_table, url FROM assets GROUP BY asset_table, url HAVING count(*) > 1"
        ).fetchall()
        assert dup_urls == []
        counts = tuple(
            db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("assets", "asset_tags", "asset_links", "changes", "registrations", "execution_status_events")
        )
        return Snapshot(
            status=status,
            committed_registrations=sum(1 for (a,) in regs if a is not None),
            registrations=len(regs),
            outputs=outputs,
            tags={a: frozenset(t) for a, t in tags.items()},
            links_per_asset=dict(Counter(a for (a,) in db.execute("SELECT asset_id FROM asset_links"))),
            assets=dict(db.execute("SELECT id, filename FROM assets").fetchall()),
            asset_changes=db.execute("SELECT count(*) FROM changes WHERE kind = 'asset'").fetchone()[0],
            row_counts=counts,
        )
    finally:
        db.close()


def check_all_or_nothing(store: Path, rid: str, count: int, *, prior: int = 0) -> str:
    """Reopen the store; assert it holds all ``count`` outputs of ``rid`` or none. Returns "all" or "none".

    ``prior``: outputs 0..prior-1 were already committed, with the same names and
    bytes, by an earlier execution, so they are reused, not duplicated.
    """
    with DerivaML("example.org", "1", working_dir=store) as ml:  # reopening recovers the WAL
        report = ml.verify()
        assert report.lost_assets == [], "asset rows whose bytes are not in the cache"
        assert report.quarantined == [], "corrupt cache objects"
        snap = snapshot(store, rid)
        assert snap.committed_registrations == 0, "a commit deletes the registrations it turns into assets"
        # registrations are durable before the commit starts, and the commit consumes all of them or none
        assert snap.registrations in (0, count), f"half a commit: {count - snap.registrations}/{count} consumed"
        every_asset = set(snap.assets)
        assert set(snap.links_per_asset) == every_asset, "an asset row without its Output link"
        assert snap.asset_changes == len(every_asset), "the outbox announces each asset once"
        if snap.registrations == count:
            assert snap.outputs == {}
            assert snap.status == "Stopped"
            assert sorted(snap.assets.values()) == [name(i) for i in range(prior)]
            assert all(n == 1 for n in snap.links_per_asset.values())
            return "none"
        assert snap.status == "Uploaded"
        assert sorted(snap.outputs) == [name(i) for i in range(count)]
        assert {role for _, role, _ in snap.outputs.values()} == {"Output"}
        assert sorted(snap.assets.values()) == [name(i) for i in range(count)], "one asset per (table, URL)"
        for filename, (asset_id, _, _) in snap.outputs.items():
            assert snap.tags[asset_id] == {TAG, "Output_File"}, filename
            i = int(filename[4:9])
            assert snap.links_per_asset[asset_id] == (2 if i < prior else 1), filename
        # the API agrees, and the bytes come back (one sample: listing thousands costs a query each)
        i = count // 2
        sample = ml.lookup_asset(snap.outputs[name(i)][2])
        assert sample.filename == name(i)
        assert {e.execution_rid for e in sample.list_executions("Output")} >= {rid}
        assert set(sample.asset_types) == {TAG, "Output_File"}
        assert sample.download(store.parent / "check").read_bytes() == content(_tag_of(store), i)
        return "all"


def _tag_of(store: Path) -> str:
    return store.name


def commit_again_completes(
    worker: Path, store: Path, rid: str, count: int, *, prior: int, outcome: str, twice: bool = True
) -> None:
    """A fresh process resumes the execution and commits: afterwards all of it is there, once.

    With ``twice``, one more commit in another fresh process must change nothing.
    """
    committed = resume_commit(worker, store, rid)
    assert committed == (0 if outcome == "all" else count)
    assert check_all_or_nothing(store, rid, count, prior=prior) == "all"
    if not twice:
        return
    with DerivaML("example.org", "1", working_dir=store):
        before = snapshot(store, rid)
    assert resume_commit(worker, store, rid) == 0
    with DerivaML("example.org", "1", working_dir=store):
        after = snapshot(store, rid)
    assert after == before, "a second commit changed the journal"


# --- named crash points ------------------------------------------------------------------------

#: where each crash point lies: before the journal commit nothing is recorded, after it everything is
CRASH_POINTS = {
    "capture.before_rename": "none",  # an object written to a temp file (the staged files are copied)
    "capture.before_link": "none",  # a staged file made read-only, about to become the object
    "capture.after_link": "none",  # a staged file and its object share the inode
    "commit.after_capture": "none",
    "commit.before_journal_commit": "none",
    "commit.after_journal_commit": "all",
}

COUNT = 40
#: outputs 0..PRIOR-1 have the same names and bytes as assets an earlier execution committed
PRIOR = 5


@pytest.mark.parametrize("crash_at", list(CRASH_POINTS))
def test_kill_at_crash_point_leaves_all_or_nothing(worker: Path, tmp_path: Path, crash_at: str) -> None:
    store = tmp_path / "point"
    tag = _tag_of(store)
    # an earlier execution already committed the first PRIOR outputs: the crashed commit reuses
    # those assets (new Output links and tags on old rows) and must not duplicate or lose them
    with DerivaML("example.org", "1", working_dir=store) as ml:
        ml.add_term("Asset_Type", TAG, description="written by a crash test")
        earlier = ml.create_execution(config(ml, "earlier"))
        with earlier:
            for i in range(PRIOR):
                earlier.asset_file_path(TABLE, name(i), asset_types=[TAG]).write_bytes(content(tag, i))
        assert earlier.commit_output_assets().total_uploaded == PRIOR

    clean = crash_at != "capture.before_rename"
    run = run_commit(worker, store, COUNT, tag, tmp_path / "phases", crash_at=crash_at, clean=clean)
    assert run.returncode == -signal.SIGKILL, f"the crash point {crash_at} was not reached:\n{run.stderr}"
    assert run.last_phase in ("commit", "captured"), run.phases

    outcome = check_all_or_nothing(store, run.rid, COUNT, prior=PRIOR)
    assert outcome == CRASH_POINTS[crash_at]
    commit_again_completes(worker, store, run.rid, COUNT, prior=PRIOR, outcome=outcome)
    # the commit that completed the work also removed what the killed one staged: no staged name is
    # left sharing an inode with a cache object, and every object is read-only with a single link
    assert not (store / "executions" / run.rid / "assets").exists()
    for obj in (store / "cache" / "objects").glob("*/*"):
        st = obj.stat()
        assert (st.st_nlink, st.st_mode & 0o777) == (1, 0o444), obj


# --- random kills ------------------------------------------------------------------------------

MANY = 2000
TRIALS = 8
SEED = 20261125


def _phase_name(run: Run, outcome: str) -> str:
    last = run.last_phase
    if run.returncode == 0:
        return "finished before the kill"
    if last == "commit":
        return "before capture"
    if last.startswith("capture "):
        return "capturing"
    if last == "captured":
        # after the last capture: syncfs, stat index, journal transaction, staging clean-up
        return "after capture, journal committed" if outcome == "all" else "after capture, before journal commit"
    if last == "cleaned":
        return "after the staging clean-up"
    return "after the commit returned"


def test_random_kill_during_commit_of_many_files(worker: Path, tmp_path: Path) -> None:
    # an uninterrupted run first: it must commit everything, and it times the commit for the kills
    calm_store = tmp_path / "calm"
    calm = run_commit(worker, calm_store, MANY, _tag_of(calm_store), tmp_path / "calm-phases")
    assert calm.returncode == 0, calm.stderr
    result = json.loads(calm.stdout)
    assert result["committed"] == MANY
    assert check_all_or_nothing(calm_store, calm.rid, MANY) == "all"
    commit_s = result["commit_s"]

    rng = random.Random(SEED)
    seen: list[tuple[float, str, str]] = []
    for trial in range(TRIALS):
        store = tmp_path / f"trial-{trial}"
        delay = rng.uniform(0.0, 1.2) * commit_s
        run = run_commit(worker, store, MANY, _tag_of(store), tmp_path / f"phases-{trial}", kill_after=delay)
        assert run.returncode in (0, -signal.SIGKILL), run.stderr
        assert "Traceback" not in run.stderr, run.stderr
        outcome = check_all_or_nothing(store, run.rid, MANY)
        if run.returncode == 0:
            assert outcome == "all"
        seen.append((round(delay, 3), _phase_name(run, outcome), outcome))
        # (the second, no-op commit is checked at every named crash point; here once is enough)
        commit_again_completes(worker, store, run.rid, MANY, prior=0, outcome=outcome, twice=False)
    print(f"commit of {MANY} files took {commit_s:.2f} s; kills (delay s, phase, outcome): {seen}")
    assert any(phase != "finished before the kill" for _, phase, _ in seen), "no trial was killed mid-commit"
