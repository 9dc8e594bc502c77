"""A sync runs while executions keep recording into the same store: neither blocks the other for long,
and what was recorded during the sync goes with the next one."""

from __future__ import annotations

import threading

from syncsupport import catalog_rows, make_remote, random_bytes, record_run

from satchel import DerivaML


def test_recording_continues_during_a_push(deriva_server, tmp_path):
    store = tmp_path / "store"
    with DerivaML("localhost", "1", working_dir=store) as ml:
        record_run(ml, {f"before{i}.bin": ("Model", random_bytes(50_000, i), []) for i in range(40)})
    recorded: list[str] = []
    errors: list[BaseException] = []
    started = threading.Event()

    def record_meanwhile() -> None:
        try:
            with DerivaML("localhost", "1", working_dir=store) as other:  # as another process would
                started.wait(10)
                for i in range(10):
                    _, rids = record_run(other, {f"during{i}.png": ("Image", random_bytes(300, 100 + i), [])})
                    recorded.extend(rids.values())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=record_meanwhile)
    t.start()
    with DerivaML("localhost", "1", working_dir=store) as ml, make_remote(deriva_server.url, deriva_server.token) as remote:
        started.set()
        first = ml.push(remote=remote, transfers=2)
        t.join(60)
        assert not errors, errors
        assert first.ok, first.failed
        assert len(recorded) == 10
        second = ml.push(remote=remote)
        assert second.ok and ml.sync_plan().empty
        assert len(catalog_rows(remote, "Model")) == 40
        assert sorted(r["Filename"] for r in catalog_rows(remote, "Image")) == sorted(f"during{i}.png" for i in range(10))
        assert len(remote.catalog.get("deriva-ml", "Execution")) == 11
