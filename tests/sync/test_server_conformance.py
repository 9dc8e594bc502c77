"""The same push, pull, crash, fault and concurrency checks against the emulator and a real server.

Every test here takes the ``target`` fixture: the emulator always, and a real ERMrest + Hatrac when
``SATCHEL_TEST_DERIVA_URL`` and ``SATCHEL_TEST_DERIVA_COOKIE`` (a webauthn cookie value of the
pushing user) are set; ``SATCHEL_TEST_DERIVA_ADMIN_COOKIE`` may name a user who can create catalogs
and top-level Hatrac namespaces (default: the same cookie). Each test gets a catalog of its own,
made by :mod:`satchel.testing.provision`, and bytes that no earlier run sent (a real server keeps
every object). With the server of ../shared/real-deriva (docs/emulator.md, "Against a real server")::

    SATCHEL_TEST_DERIVA_URL=http://127.0.0.1 SATCHEL_TEST_DERIVA_COOKIE=$(login.sh test2 dummypassword) \\
    SATCHEL_TEST_DERIVA_ADMIN_COOKIE=$(login.sh) python -m pytest tests/sync/test_server_conformance.py
"""

from __future__ import annotations

import hashlib
import http.client
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from syncsupport import FAST_RETRY, FAST_TIMEOUT, check_catalog, populate, random_bytes, record_run

from satchel import DerivaML, ExecutionConfiguration
from satchel.remote import Credential, Remote
from satchel.testing import FaultProxy
from satchel.testing.provision import provision

REAL_URL = os.environ.get("SATCHEL_TEST_DERIVA_URL")
REAL_COOKIE = os.environ.get("SATCHEL_TEST_DERIVA_COOKIE", "").removeprefix("webauthn=")
REAL_ADMIN = os.environ.get("SATCHEL_TEST_DERIVA_ADMIN_COOKIE", "").removeprefix("webauthn=") or REAL_COOKIE


@dataclass
class Target:
    """A server and a catalog of its own for one test."""

    name: str
    url: str
    catalog_id: str
    kind: str  # bearer or cookie
    token: str
    salt: int

    @property
    def credential(self) -> Credential:
        if self.kind == "cookie":
            return Credential.cookie(f"webauthn={self.token}")
        return Credential.bearer(self.token)

    def remote(self, url: str | None = None) -> Remote:
        return Remote(url or self.url, self.catalog_id, credential=self.credential, retry=FAST_RETRY,
                      timeout=FAST_TIMEOUT)

    def store(self, path: Path) -> DerivaML:
        return DerivaML("localhost", self.catalog_id, working_dir=path)

    def env(self) -> dict[str, str]:
        """What a push in a subprocess needs to reach this target."""
        return dict(os.environ, CONF_URL=self.url, CONF_CATALOG=self.catalog_id, CONF_KIND=self.kind,
                    CONF_TOKEN=self.token, SYNC_SUPPORT=str(Path(__file__).parent))


@pytest.fixture(params=["emulator", "real"])
def target(request, tmp_path):
    if request.param == "emulator":
        server = request.getfixturevalue("deriva_server")
        yield Target("emulator", server.url, server.catalog_id, "bearer", server.token, 0)
        return
    if not (REAL_URL and REAL_COOKIE):
        pytest.skip("no real server: set SATCHEL_TEST_DERIVA_URL and SATCHEL_TEST_DERIVA_COOKIE")
    with Remote(REAL_URL, "1", credential=Credential.cookie(f"webauthn={REAL_COOKIE}")) as me:
        user = me.whoami()["client"]["id"]
    catalog = provision(REAL_URL, Credential.cookie(f"webauthn={REAL_ADMIN}"), grant=[user])
    yield Target("real", REAL_URL.rstrip("/"), catalog, "cookie", REAL_COOKIE, time.time_ns() % 1_000_000_007)


PUSH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, os.environ["SYNC_SUPPORT"])
    from syncsupport import FAST_RETRY, FAST_TIMEOUT
    from satchel import DerivaML
    from satchel.remote import Credential, Remote
    token = os.environ["CONF_TOKEN"]
    credential = Credential.cookie("webauthn=" + token) if os.environ["CONF_KIND"] == "cookie" else Credential.bearer(token)
    with DerivaML("localhost", os.environ["CONF_CATALOG"], working_dir=sys.argv[1]) as ml, \\
            Remote(os.environ["CONF_URL"], os.environ["CONF_CATALOG"], credential=credential, retry=FAST_RETRY,
                   timeout=FAST_TIMEOUT) as remote:
        result = ml.push(remote=remote, chunked_threshold=64 * 1024, chunk_size=32 * 1024, transfers=2)
        print("OK" if result.ok else f"FAILED {result.failed}")
    """
)


def run_push(store: Path, target: Target, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = target.env()
    if crash_at:
        env["SATCHEL_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-c", PUSH_SCRIPT, str(store)], capture_output=True, text=True,
                          timeout=120, env=env)


# --- push and pull -------------------------------------------------------------------------------


def test_a_push_lands_everything_once_and_a_second_sends_nothing(target, tmp_path):
    with target.store(tmp_path / "a") as ml, target.remote() as remote:
        outputs = populate(ml, target.salt)
        result = ml.push(remote=remote, chunked_threshold=64 * 1024, chunk_size=32 * 1024)
        assert result.ok, result.failed
        check_catalog(remote, outputs)
        again = ml.push(remote=remote)
        assert again.ok and again.bytes_sent == 0 and not again.done and ml.sync_plan().empty


def test_a_pull_mirrors_another_machines_work_for_offline_use(target, tmp_path):
    with target.store(tmp_path / "a") as a, target.remote() as remote:
        outputs = populate(a, target.salt)
        assert a.push(remote=remote).ok
        with target.store(tmp_path / "b") as b:
            assert b.pull(remote=remote, tables=["Model"]).ok
            for asset in b.find_assets("Model"):
                data = outputs[asset.filename][1]
                assert asset.md5 == hashlib.md5(data).hexdigest() and asset.synced
                assert asset.download(tmp_path / "got").read_bytes() == data  # from the cache, offline
            assert b.lookup_asset(next(iter(a.find_assets("Model"))).rid).filename in outputs
            assert b.pull(remote=remote).ok


def test_a_push_of_3000_assets(target, tmp_path):
    """Once refused by a real server's front end (its RID=any(...) lookups were too long)."""
    with target.store(tmp_path / "a") as ml, target.remote() as remote:
        ml.add_term("Workflow_Type", "Training", description="training")
        exe = ml.create_execution(ExecutionConfiguration(workflow=ml.create_workflow("t.py", "Training")))
        with exe:
            for i in range(3000):
                exe.asset_file_path("Image", f"tile {i:05d} (é).png").write_bytes(f"{target.salt} {i}".encode())
        exe.commit_output_assets()
        result = ml.push(remote=remote)
        assert result.ok, result.failed[:3]
        assert remote.catalog.count("test-schema", "Image") == 3000
        assert remote.catalog.count("test-schema", "Image_Execution") == 3000


# --- crashes, faults, concurrency ---------------------------------------------------------------------


@pytest.mark.parametrize("point", ["rows.Execution.after_insert", "objects.after_chunk#3", "objects.after_job_created",
                                   "rows.Model.after_insert", "push.after_tags", "push.after_updates"])
def test_a_push_killed_at_a_step_then_completed(point, target, tmp_path):
    store = tmp_path / "store"
    with target.store(store) as ml:
        outputs = populate(ml, target.salt)
    crashed = run_push(store, target, crash_at=point)
    assert crashed.returncode == -9, f"{point} was never reached: {crashed.stdout}{crashed.stderr}"
    done = run_push(store, target)
    assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr
    with target.remote() as remote:
        check_catalog(remote, outputs)


@pytest.mark.parametrize("fault,method,fragment", [
    ("lost-response", "POST", ":Execution?"), ("lost-response", "POST", ";upload/"),
    ("reset", "PUT", "/hatrac/Model/"), ("503-burst", "POST", "test-schema:Model?"),
    ("lost-response", "PUT", "attributegroup"),
])
def test_faults_in_front_of_the_server_leave_the_same_catalog(fault, method, fragment, target, tmp_path):
    with target.store(tmp_path / "a") as ml, FaultProxy(target.url, timeout=30) as proxy:
        outputs = populate(ml, target.salt)
        {"lost-response": lambda: proxy.lose_response(method=method, path_contains=fragment),
         "reset": lambda: proxy.reset_after(10, method=method, path_contains=fragment),
         "503-burst": lambda: proxy.fail(503, times=3, method=method, path_contains=fragment)}[fault]()
        with target.remote(proxy.url) as remote:
            for _ in range(4):
                result = ml.push(remote=remote, chunked_threshold=64 * 1024, chunk_size=32 * 1024)
                if result.ok and ml.sync_plan().empty:
                    break
            assert result.ok, result.failed
        assert proxy.pending() == 0, "the fault never met a request"
    with target.remote() as remote:
        check_catalog(remote, outputs)


def test_three_machines_pushing_at_once_converge(target, tmp_path):
    """Overlapping writes abort each other on ERMrest (503 Transaction aborted): retried, nothing doubled."""
    shared = {f"shared{i}.bin": ("Model", random_bytes(2000 + i, target.salt + 100 + i), ["Model_File"])
              for i in range(6)}
    stores = [target.store(tmp_path / f"m{n}") for n in range(3)]
    for n, ml in enumerate(stores):
        record_run(ml, {**shared, f"own{n}.png": ("Image", random_bytes(500, target.salt + 10 * n), [])})
    import threading

    results: list = [None] * 3
    barrier = threading.Barrier(3)

    def push(i: int) -> None:
        with target.remote() as remote:
            barrier.wait(10)
            results[i] = stores[i].push(remote=remote, transfers=2)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    with target.remote() as remote:
        for ml, result in zip(stores, results):
            if result is None or not result.ok:  # a second round settles what a race left pending
                assert ml.push(remote=remote).ok
        models = remote.catalog.get("test-schema", "Model", limit=None)
        assert sorted(r["Filename"] for r in models) == sorted(shared)
        assert all(len(remote.hatrac.versions(r["URL"])) == 1 for r in models)
        links = Counter((x["Model"], x["Execution"]) for x in remote.catalog.get("test-schema", "Model_Execution",
                                                                                 limit=None))
        assert set(links.values()) == {1} and len(links) == 18
    for ml in stores:
        ml.close()


# --- what the front end refuses -------------------------------------------------------------------------


def _status(target: Target, method: str, path: str) -> tuple[int, bytes]:
    parts = urlsplit(target.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
    try:
        header = {"Cookie": f"webauthn={target.token}"} if target.kind == "cookie" else {
            "Authorization": f"Bearer {target.token}"}
        conn.request(method, path, headers=header)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_the_front_end_refuses_the_same_lengths(target):
    """The emulator's thresholds are the measured ones: both servers answer alike either side of them."""
    entity = f"/ermrest/catalog/{target.catalog_id}/entity/deriva-ml:Execution/RID="
    ok = entity + "A" * (4029 - len(entity))
    assert _status(target, "GET", ok)[0] == 200
    status, body = _status(target, "GET", ok + "A")
    assert status == 404 and body.startswith(b"<!DOCTYPE HTML")
    query = f"/ermrest/catalog/{target.catalog_id}/entity/deriva-ml:Execution?limit=1&x="
    line = query + "A" * (8178 - len(query))
    assert _status(target, "GET", line)[0] == 200
    assert _status(target, "GET", line + "A")[0] == 414


# --- air-gap bundles ------------------------------------------------------------------------------------------


def test_an_air_gap_round_trip(target, tmp_path):
    """A lab seeded by a setup bundle (leased RIDs) records offline; a gateway imports and pushes; a second
    gateway pushing the same bundle changes nothing; the return bundle leaves the lab with nothing to send."""
    with target.remote() as remote:
        seeder = target.store(tmp_path / "seeder")
        seeder.pull(remote=remote)
        seeder.export_bundle(tmp_path / "seed.zip", for_offline=True, rid_pool=30, remote=remote)
        lab = target.store(tmp_path / "lab")
        lab.import_bundle(tmp_path / "seed.zip")
        outputs = populate(lab, salt=target.salt)
        lab.export_bundle(tmp_path / "out.tar")
        gateways = [target.store(tmp_path / "gateway"), target.store(tmp_path / "gateway2")]
        for g in gateways:
            g.import_bundle(tmp_path / "out.tar")
            result = g.push(remote=remote)
            assert result.ok, result.failed
        check_catalog(remote, outputs)
        gateways[0].export_bundle(tmp_path / "back.zip", for_offline=True, rid_pool=0, remote=remote)
        lab.import_bundle(tmp_path / "back.zip")
        assert not {k: v for k, v in lab.status()["would_send"].items() if v}
