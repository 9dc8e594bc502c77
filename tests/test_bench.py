"""The benchmark suite still runs (``python -m bench --quick``) and its JSON keeps its shape.

A smoke test only: no timing is asserted here, ever (issue 5); the figures
themselves are for people to read, in docs/performance.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "bench.json"
    data = tmp / "data"
    res = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--repeat", "1",
         "--only", "capture-small", "--only", "noop-redownload", "--only", "push-small", "--only", "scale",
         "--only", "bundle", "--only", "gc",
         "--out", str(out), "--data-dir", str(data)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "capture-small" in res.stdout and "noop-redownload" in res.stdout  # the table
    assert list(data.iterdir()) == []  # the generated data is removed
    return json.loads(out.read_text())


def test_document_shape(doc: dict) -> None:
    assert doc["quick"] is True and doc["repeat"] == 1
    machine = doc["machine"]
    for key in ("cpu_count", "python", "kernel", "filesystem"):
        assert machine[key], key
    assert machine["filesystem"]["type"]
    assert [w["name"] for w in doc["workloads"]] == ["capture-small", "noop-redownload", "push-small", "scale", "bundle",
                                                     "gc"]


def test_figures_have_statistics_references_and_targets(doc: dict) -> None:
    for w in doc["workloads"][:2]:
        assert w["status"] == "ok", w
        assert w["figures"]
        for f in w["figures"]:
            assert {"id", "label", "unit", "median", "min", "max", "values", "reference", "ratio", "target", "met"} <= set(f)
            assert len(f["values"]) == 1 and f["min"] <= f["median"] <= f["max"]
            if f["reference"] is not None:
                assert f["reference"]["median"] is not None and f["ratio"] is not None
            if f["target"] is not None:
                assert isinstance(f["met"], bool) and f["target"]["text"]
    figures = {f["id"]: f for w in doc["workloads"][:2] for f in w["figures"]}
    assert figures["end_to_end"]["reference"]["label"].startswith("cp -r")
    assert figures["download_assets"]["reference"]["label"].startswith("os.stat")
    # counted, not timed: a no-op re-download re-hashes and re-copies nothing
    assert figures["rehash_recopy_batch"]["values"] == [0]


def test_push_small_counts_requests_against_the_derivapy_reference(doc: dict) -> None:
    push = doc["workloads"][2]
    assert push["status"] == "ok", push
    figures = {f["id"]: f for f in push["figures"]}
    assert {"push", "push_vs_derivapy", "catalog_requests_per_asset", "requests_per_asset"} <= set(figures)
    assert figures["push"]["reference"]["label"].startswith("deriva-py")
    assert figures["push_vs_derivapy"]["target"]["on"] == "ratio"
    # counted, not timed: every asset reached Hatrac (at least one request each), deriva-py's way
    # makes a catalog insert per file
    assert figures["requests_per_asset"]["values"][0] >= 1
    assert figures["catalog_requests_per_asset"]["reference"]["values"][0] >= 1
    assert isinstance(figures["catalog_requests_per_asset"]["met"], bool)


def test_scale_builds_its_store_through_the_journal_write_path(doc: dict) -> None:
    scale = doc["workloads"][3]  # it reaches into the API's internals to build 20,000 assets fast: keep it running
    assert scale["status"] == "ok", scale
    figures = {f["id"]: f for f in scale["figures"]}
    assert scale["params"]["assets"] == 20_000 and figures["store_bytes_per_asset"]["values"][0] > 0


def test_bundle_compares_export_and_import_with_tar(doc: dict) -> None:
    bundle = doc["workloads"][4]
    assert bundle["status"] == "ok", bundle
    figures = {f["id"]: f for f in bundle["figures"]}
    for part in ("small", "large"):
        for verb in ("export", "import"):
            f = figures[f"{part}_{verb}"]
            assert f["reference"]["label"].startswith("tar -")
            assert f["target"]["on"] == "ratio" and isinstance(f["met"], bool)
    assert figures["large_export_peak_rss"]["values"][0] > 0


def test_gc_removes_every_pushed_object_beside_a_bare_unlink_loop(doc: dict) -> None:
    gc = doc["workloads"][5]
    assert gc["status"] == "ok", gc
    figures = {f["id"]: f for f in gc["figures"]}
    assert figures["gc"]["reference"]["label"].startswith("bare loop") and figures["gc"]["ratio"] > 0
    assert figures["storage_summary"]["reference"]["label"].startswith("du -s")
