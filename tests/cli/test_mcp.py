"""``satchel mcp``, spoken to as a client would: the SDK's own stdio client starts the real command.

Each test starts one server (a second or so) on a store with two executions: ``train`` made a model
and a log, ``evaluate`` read the model and wrote metrics.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, Tool

from satchel import AssetSpec, DerivaML, ExecutionConfiguration
from satchel.cli import main
from workflows import a_workflow

SATCHEL = shutil.which("satchel") or str(Path(sys.executable).parent / "satchel")
TOOLS = {"lookup_asset", "list_assets", "find_assets", "update_asset", "list_asset_executions", "lineage", "status"}


@dataclass
class Store:
    path: Path
    train: str  # execution RIDs
    evaluate: str
    model: str  # asset RIDs
    log: str
    metrics: str


@pytest.fixture
def store(tmp_path: Path) -> Store:
    path = tmp_path / "store"
    with DerivaML("example.org", "1", working_dir=path) as ml:
        workflow = a_workflow(ml)
        train = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="train"))
        with train:
            train.asset_file_path("Execution_Asset", "model.bin", asset_types=["Model_File"]).write_bytes(b"m" * 2048)
            train.asset_file_path("Execution_Metadata", "train.log").write_text("loss 0.1")
        model, log = (p.asset_rid for p in train.commit_output_assets().assets)
        evaluate = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="evaluate",
                                                              assets=[AssetSpec(rid=model)]))
        with evaluate:
            evaluate.asset_file_path("Execution_Asset", "metrics.json", asset_types=["Metrics_File"]).write_text("{}")
        (metrics,) = (p.asset_rid for p in evaluate.commit_output_assets().assets)
    return Store(path, train.execution_rid, evaluate.execution_rid, model, log, metrics)


def talk(store: Path, *calls: tuple[str, dict[str, Any]], errlog: Path | None = None,
         together: int = 1) -> tuple[list[Tool], list[CallToolResult]]:
    """Start ``satchel mcp --store STORE``, list its tools, make ``calls`` (each ``together`` times at once)."""

    async def session() -> tuple[list[Tool], list[CallToolResult]]:
        params = StdioServerParameters(command=SATCHEL, args=["mcp", "--store", str(store)],
                                       env={"SATCHEL_HOME": str(store.parent / "home")})
        with open(errlog or os.devnull, "w") as err:
            async with stdio_client(params, errlog=err) as (read, write), ClientSession(read, write) as client:
                await client.initialize()
                tools = (await client.list_tools()).tools
                results = []
                for name, arguments in calls:
                    answers = await asyncio.gather(*(client.call_tool(name, arguments) for _ in range(together)))
                    assert all(a == answers[0] for a in answers), "calls at once answer as calls in turn"
                    results.append(answers[0])
        return tools, results

    return asyncio.run(asyncio.wait_for(session(), timeout=60))


def answer(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert json.loads(result.content[0].text) == result.structured_content  # the same answer, as text
    return result.structured_content


def error(result: CallToolResult) -> str:
    assert result.is_error and result.structured_content is None
    (text,) = result.content
    return text.text


def cli_json(*args: str) -> Any:
    done = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return json.loads(done.output)


def test_the_server_lists_its_seven_tools_with_schemas(store):
    tools, _ = talk(store.path)
    assert {t.name for t in tools} == TOOLS and len(tools) == 7
    for tool in tools:
        assert tool.input_schema["type"] == "object" and tool.output_schema["type"] == "object", tool.name
        assert "offline" in tool.description.lower() or "`satchel push`" in tool.description, tool.name
        assert tool.annotations.open_world_hint is False
        assert tool.annotations.read_only_hint is (tool.name != "update_asset")
    schemas = {t.name: t.input_schema for t in tools}
    assert schemas["lookup_asset"]["required"] == ["rid"]
    assert schemas["list_assets"]["required"] == ["asset_table"]
    assert set(schemas["update_asset"]["properties"]) == {"rid", "asset_types", "description"}
    assert set(schemas["find_assets"]["properties"]) == {"asset_table", "asset_type", "limit", "offset"}
    assert set(schemas["list_asset_executions"]["properties"]) == {"rid", "asset_role"}
    assert set(schemas["lineage"]["properties"]) == {"rid", "direction", "depth"}
    assert schemas["status"]["properties"] == {}


def test_each_read_tool_answers_from_the_store_as_the_cli_prints_it(store):
    s, at = store, str(store.path)
    _, results = talk(
        s.path,
        ("lookup_asset", {"rid": s.model}),
        ("list_assets", {"asset_table": "Execution_Asset"}),
        ("find_assets", {"asset_type": "Model_File"}),
        ("find_assets", {"asset_table": "Execution_Asset", "limit": 1}),
        ("find_assets", {"asset_table": "Execution_Asset", "limit": 1, "offset": 1}),
        ("find_assets", {}),
        ("list_asset_executions", {"rid": s.model}),
        ("list_asset_executions", {"rid": s.model, "asset_role": "Input"}),
        ("lineage", {"rid": s.metrics, "direction": "backward"}),
        ("lineage", {"rid": s.metrics, "direction": "backward", "depth": 1}),
        ("lineage", {"rid": s.model}),
        ("status", {}),
        together=3,  # the SDK runs each on a worker thread: three at once must not trip over the store
    )
    (model, table, tagged, first, second, everything, links, inputs, lineage, near, both_ways,
     status) = map(answer, results)

    assert model == cli_json("show", "--store", at, s.model)
    assert (model["kind"], model["RID"], model["Table"], model["Filename"], model["Length"]) == (
        "asset", s.model, "Execution_Asset", "model.bin", 2048)
    assert "Model_File" in model["Asset_Type"] and model["synced"] is False and model["Description"] is None
    assert model["executions"] == [{"Execution": s.train, "Asset_Role": "Output"},
                                   {"Execution": s.evaluate, "Asset_Role": "Input"}]

    assert table == {"assets": cli_json("ls", "--store", at, "--table", "Execution_Asset"), "next_offset": None}
    assert [a["RID"] for a in table["assets"]] == [s.model, s.metrics]
    assert set(table["assets"][0]) == {"RID", "Table", "Filename", "Length", "MD5", "URL", "Asset_Type", "synced"}
    assert [a["RID"] for a in tagged["assets"]] == [s.model]
    assert (first["assets"], first["next_offset"]) == (table["assets"][:1], 1)
    assert (second["assets"], second["next_offset"]) == (table["assets"][1:], None)
    assert [a["RID"] for a in everything["assets"]] == [s.model, s.log, s.metrics]

    assert links == {"RID": s.model, "executions": model["executions"]}
    assert inputs == {"RID": s.model, "executions": [{"Execution": s.evaluate, "Asset_Role": "Input"}]}

    with DerivaML("example.org", "1", working_dir=s.path) as ml:
        assert lineage == ml.lineage(s.metrics, direction="backward").as_dict()
        assert both_ways == ml.lineage(s.model).as_dict()
    assert (lineage["root"], lineage["root_kind"], lineage["truncated"]) == (s.metrics, "asset", False)
    assert {(n["kind"], n["rid"]) for n in lineage["nodes"] if n["kind"] != "workflow"} == {
        ("asset", s.metrics), ("execution", s.evaluate), ("asset", s.model), ("execution", s.train)}
    flow = {(e["source"], e["kind"], e["target"]) for e in lineage["edges"] if e["kind"] != "wasAssociatedWith"}
    assert flow == {(s.metrics, "wasGeneratedBy", s.evaluate), (s.evaluate, "used", s.model),
                    (s.model, "wasGeneratedBy", s.train)}
    assert near["truncated"] is True and s.train not in {n["rid"] for n in near["nodes"]}
    assert {s.train, s.evaluate, s.metrics} <= {n["rid"] for n in both_ways["nodes"]}  # up and down from the model

    assert status == cli_json("status", "--store", at)
    assert (status["executions"], status["assets"], status["asset_bytes"]) == (2, 3, 2048 + 8 + 2)


def test_update_asset_is_recorded_here_and_queued_for_the_next_push(store):
    with DerivaML("example.org", "1", working_dir=store.path) as ml:
        tags = ml.lookup_asset(store.model).asset_types
        before = ml.status()
    assert "Model_File" in tags and "Output_File" in tags
    _, results = talk(
        store.path,
        ("update_asset", {"rid": store.model, "asset_types": ["Metrics_File"], "description": "the best model"}),
        ("update_asset", {"rid": store.model, "asset_types": ["Metrics_File"], "description": "the best model"}),
        ("lookup_asset", {"rid": store.model}),
    )
    changed, again, looked_up = map(answer, results)
    expected_tags = sorted({*tags, "Metrics_File"} - {"Model_File"})  # the direction tags stay
    assert changed == {"RID": store.model, "added": ["Metrics_File"], "removed": ["Model_File"],
                       "description_changed": True, "queued_for_push": True, "Asset_Type": expected_tags,
                       "Description": "the best model"}
    assert again == {**changed, "added": [], "removed": [], "description_changed": False, "queued_for_push": False}
    assert looked_up["Asset_Type"] == expected_tags and looked_up["Description"] == "the best model"

    with DerivaML("example.org", "1", working_dir=store.path) as ml:  # the journal has it, for the next push
        asset = ml.lookup_asset(store.model)
        assert (asset.asset_types, asset.description) == (expected_tags, "the best model")
        after = ml.status()
    pending = {kind: after["pending_changes"].get(kind, 0) - before["pending_changes"].get(kind, 0)
               for kind in ("tag_add", "tag_remove", "description")}
    assert pending == {"tag_add": 1, "tag_remove": 1, "description": 1}
    assert after["would_send"]["descriptions"] == before["would_send"]["descriptions"] + 1
    assert after["would_send"]["tag_removals"] == before["would_send"]["tag_removals"] + 1


def test_errors_are_tool_errors_with_our_messages(store, tmp_path):
    log = tmp_path / "server-stderr.log"
    _, results = talk(
        store.path,
        ("lookup_asset", {"rid": "9-NOPE"}),
        ("list_asset_executions", {"rid": store.train}),
        ("lineage", {"rid": "9-NOPE"}),
        ("list_assets", {"asset_table": "Imgae"}),
        ("update_asset", {"rid": store.model, "asset_types": ["Weights"]}),
        ("update_asset", {"rid": store.model}),
        ("lineage", {"rid": store.model, "direction": "sideways"}),
        ("lookup_asset", {"rid": 42}),
        ("find_assets", {"limit": "many"}),
        ("list_asset_executions", {"rid": store.model, "asset_role": "Both"}),
        ("lookup_asset", {}),
        errlog=log,
    )
    messages = list(map(error, results))
    assert "no asset has RID 9-NOPE in this store" in messages[0]
    assert f"RID {store.train} is an execution, not an asset" in messages[1]
    assert "RID 9-NOPE names nothing in this store" in messages[2]
    assert "asset table 'Imgae' is not known; known asset tables: Execution_Asset" in messages[3]
    assert "Asset_Type term(s) 'Weights' not in the vocabulary" in messages[4]
    assert "update_asset needs asset_types" in messages[5]
    for message, field in zip(messages[6:], ("direction", "rid", "limit", "asset_role", "rid"), strict=True):
        assert "validation error" in message and field in message  # the SDK refuses them, naming the field
    assert "Traceback" not in log.read_text()  # anticipated failures are not logged as crashes
    with DerivaML("example.org", "1", working_dir=store.path) as ml:
        assert "Weights" not in ml.lookup_asset(store.model).asset_types  # a refused update changed nothing


@pytest.fixture
def read_only_store(store, tmp_path):
    """The store copied onto a small tmpfs mounted read-only (skipped where mounting is not allowed)."""
    mount = tmp_path / "media"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        shutil.copytree(store.path, mount / "store")
        if subprocess.run(["mount", "-o", "remount,ro", str(mount)], capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        yield Store(mount / "store", store.train, store.evaluate, store.model, store.log, store.metrics)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_store_on_read_only_media_serves_reads_and_refuses_updates_plainly(read_only_store):
    s = read_only_store
    _, (looked_up, listed, status, update) = talk(
        s.path, ("lookup_asset", {"rid": s.model}), ("find_assets", {}), ("status", {}),
        ("update_asset", {"rid": s.model, "description": "no"}),
    )
    assert answer(looked_up)["RID"] == s.model and len(answer(listed)["assets"]) == 3
    assert answer(status)["assets"] == 3
    assert "is on read-only media" in error(update) and "copy the store to a writable disk" in error(update)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_a_terminate_stops_the_server_at_once_and_keeps_the_store(store, signum):
    """The SDK reads stdin on a thread nothing cancels: without our handler the server would wait for a line."""
    server = subprocess.Popen([SATCHEL, "mcp", "--store", str(store.path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                            "clientInfo": {"name": "test", "version": "0"}}}
        server.stdin.write(json.dumps(hello) + "\n")
        server.stdin.flush()
        assert json.loads(server.stdout.readline())["result"]["serverInfo"]["name"] == "satchel"
        server.send_signal(signum)  # stdin stays open, as a client's does
        assert server.wait(timeout=10) == 128 + signum
        assert "Traceback" not in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stdin.close()
        server.stdout.close()
        server.stderr.close()
    with DerivaML("example.org", "1", working_dir=store.path) as ml:
        assert ml.status()["assets"] == 3


def test_without_the_sdk_the_command_says_how_to_install_it(store, monkeypatch):
    monkeypatch.setitem(sys.modules, "mcp", None)  # what an interpreter without the SDK finds
    done = CliRunner().invoke(main, ["mcp", "--store", str(store.path)])
    assert done.exit_code == 1
    assert done.output.strip().splitlines() == [
        "error: satchel mcp needs the Model Context Protocol SDK, which is not installed here; "
        "install it with: pip install 'satchel[mcp]'"]


def test_other_commands_do_not_import_the_sdk(store):
    code = ("import sys; from satchel.cli import main; main(['--help'], standalone_mode=False); "
            "main(['ls', '--store', sys.argv[1]], standalone_mode=False); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'mcp_types') or m == 'satchel.mcpserver'))")
    done = subprocess.run([sys.executable, "-c", code, str(store.path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_python_example_of_the_docs_runs(store, monkeypatch, capfd):
    (block,) = re.findall(r"```python\n(.*?)\n```", (Path(__file__).parents[2] / "docs" / "mcp.md").read_text(), re.S)
    monkeypatch.setenv("PATH", f"{Path(SATCHEL).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    exec(compile(block, "docs/mcp.md", "exec"), {"store": str(store.path)})
    lines = capfd.readouterr().out.splitlines()
    assert lines[0] == str(sorted(TOOLS))
    assert lines[1:] == [f"{store.model} model.bin ['Input_File', 'Model_File', 'Output_File']"]
