"""The server behind ``satchel mcp``: a store's metadata calls as Model Context Protocol tools.

Seven tools wrap calls of :class:`~satchel.api.DerivaML` on one open store:
``lookup_asset``, ``list_assets``, ``find_assets``, ``update_asset``,
``list_asset_executions``, ``lineage`` and ``status``. None of them moves bytes
(uploads and downloads stay in Python) and none reaches the network:
``update_asset`` records its change in the journal, and the next ``satchel push``
sends it. docs/mcp.md is the reference a client's user reads.

Threads. The SDK runs a synchronous tool on a worker thread, so two calls can
overlap. The journal's engine lends each thread a pooled connection of its own
(opened with ``check_same_thread=False``), but the workspace keeps small caches
(known terms, asset tables) that are not made for concurrent use, so one lock
makes the calls take turns; each is a short read (or one write transaction) of
an indexed SQLite file.

Errors. A :class:`~satchel.errors.SatchelError` (an unknown RID, an unknown tag,
a store on read-only media) and a failure of the machine around satchel (the
disk, SQLite) come back as a tool error carrying our message. Arguments that do
not fit a tool's input schema are refused by the SDK, naming the field.
Anything else is a bug: the client is told only that the tool failed, and the
traceback goes to stderr.
"""

from __future__ import annotations

import inspect
import itertools
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field
from typing_extensions import TypedDict  # pydantic reads typing.TypedDict only from Python 3.12

from satchel.api import Asset, DerivaML
from satchel.errors import SatchelError, StoreError

# --- what the tools take -------------------------------------------------------------------------

AssetRID = Annotated[str, Field(
    min_length=1,
    description="The RID (Resource IDentifier, e.g. '1-ABC2') of an asset: the catalog's RID once pushed, or the "
                "provisional one this store gave it; either names it.",
)]
AnyRID = Annotated[str, Field(min_length=1, description="The RID of an asset or of an execution.")]
AssetTable = Annotated[str, Field(
    min_length=1, description="The name of an asset table of the catalog, e.g. 'Execution_Asset' or 'Image'.",
)]
Limit = Annotated[int, Field(ge=1, le=1000, description="At most this many assets in one answer.")]
Offset = Annotated[int, Field(ge=0, description="Skip this many matching assets first (pass a next_offset).")]

# --- what they answer (field names as `satchel ls --json` and `satchel show --json` print them) ----


class ExecutionLink(TypedDict):
    """One link between an asset and an execution: the asset was its Input or its Output."""

    Execution: str
    Asset_Role: str


class AssetListing(TypedDict):
    """An asset as one row of ``satchel ls --json``."""

    RID: str
    Table: str
    Filename: str
    Length: int
    MD5: str
    URL: str
    Asset_Type: list[str]
    synced: bool


class AssetDetail(TypedDict):
    """An asset as ``satchel show RID --json`` prints it."""

    kind: Literal["asset"]
    RID: str
    Table: str
    Filename: str
    Length: int
    MD5: str
    URL: str
    Description: str | None
    Asset_Type: list[str]
    executions: list[ExecutionLink]
    metadata: dict[str, Any]
    synced: bool


class AssetPage(TypedDict):
    """A page of assets; ``next_offset`` is the ``offset`` of the next page, null on the last."""

    assets: list[AssetListing]
    next_offset: int | None


class AssetExecutions(TypedDict):
    """An asset's links to executions."""

    RID: str
    executions: list[ExecutionLink]


class AssetUpdate(TypedDict):
    """What ``update_asset`` recorded, and the asset's tags and description after it."""

    RID: str
    added: list[str]
    removed: list[str]
    description_changed: bool
    queued_for_push: bool
    Asset_Type: list[str]
    Description: str | None


def asset_listing(a: Asset) -> AssetListing:
    return {"RID": a.rid, "Table": a.asset_table, "Filename": a.filename, "Length": a.length, "MD5": a.md5,
            "URL": a.url, "Asset_Type": a.asset_types, "synced": a.synced}


def asset_detail(a: Asset) -> AssetDetail:
    return {"kind": "asset", "RID": a.rid, "Table": a.asset_table, "Filename": a.filename, "Length": a.length,
            "MD5": a.md5, "URL": a.url, "Description": a.description, "Asset_Type": a.asset_types,
            "executions": [{"Execution": e.execution_rid, "Asset_Role": e.asset_role} for e in a.executions],
            "metadata": a.metadata, "synced": a.synced}


def asset_page(assets: Iterable[Asset], offset: int, limit: int) -> AssetPage:
    window = list(itertools.islice(assets, offset, offset + limit + 1))
    more = len(window) > limit
    return {"assets": [asset_listing(a) for a in window[:limit]], "next_offset": offset + limit if more else None}


def environmental(exc: BaseException) -> bool:
    """A failure of the machine around satchel (a file, the disk, SQLite), not of satchel's own logic."""
    if isinstance(exc, (OSError, sqlite3.Error)):
        return True
    return isinstance(getattr(exc, "orig", None), sqlite3.Error)


# --- the tools -----------------------------------------------------------------------------------


class StoreTools:
    """The tools' bodies, over one open store; each call takes the store's turn (see the module docstring)."""

    def __init__(self, ml: DerivaML) -> None:
        self.ml = ml
        self._turn_lock = threading.Lock()

    @contextmanager
    def turn(self) -> Iterator[DerivaML]:
        """The store, for one call at a time; our errors become tool errors with our message."""
        with self._turn_lock:
            try:
                yield self.ml
            except SatchelError as exc:
                raise ToolError(str(exc)) from exc
            except Exception as exc:
                if not environmental(exc):
                    raise
                cause = getattr(exc, "orig", None) or exc
                raise ToolError(f"{type(cause).__name__}: {cause}; nothing recorded before was lost") from exc

    def last_call(self) -> None:
        """Wait for the call under way, if any, and let no other begin: for a process about to end."""
        self._turn_lock.acquire()

    def lookup_asset(self, rid: AssetRID) -> AssetDetail:
        """One asset of the local store by its RID: table, file name, size, MD5, URL, description, tags
        (Asset_Type terms), the executions it is linked to (as Input or Output), its metadata columns, and
        whether the catalog has it yet (synced). Offline: reads the local store only."""
        with self.turn() as ml:
            return asset_detail(ml.lookup_asset(rid))

    def list_assets(self, asset_table: AssetTable, limit: Limit = 100, offset: Offset = 0) -> AssetPage:
        """The assets of one asset table in the local store, oldest first, a page at a time. An unknown table
        is an error naming the known ones. Offline: reads the local store only."""
        with self.turn() as ml:
            return asset_page(ml.list_assets(asset_table), offset, limit)

    def find_assets(
        self,
        asset_table: Annotated[str | None, Field(description="Only assets of this asset table.")] = None,
        asset_type: Annotated[str | list[str] | None, Field(
            description="Only assets carrying this tag (an Asset_Type term, e.g. 'Model_File'); with a list, "
                        "assets carrying any of them.")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> AssetPage:
        """Assets of the local store, optionally only those of one asset table and/or carrying a tag, oldest
        first, a page at a time. With no filter, every asset. Offline: reads the local store only."""
        with self.turn() as ml:
            return asset_page(ml.find_assets(asset_table=asset_table, asset_type=asset_type), offset, limit)

    def update_asset(
        self,
        rid: AssetRID,
        asset_types: Annotated[list[str] | None, Field(
            description="The complete set of tags (Asset_Type terms) the asset should carry: tags not listed are "
                        "removed, listed ones added. The direction tags Input_File and Output_File are kept "
                        "anyway. [] removes every other tag; omit it to leave the tags alone.")] = None,
        description: Annotated[str | None, Field(
            description="The asset's new description; '' clears it; omit it to leave it alone.")] = None,
    ) -> AssetUpdate:
        """Change an asset's tags and/or description in the local store, in one transaction. Tags are terms of
        the Asset_Type vocabulary; an unknown term is an error listing the known ones. The change is recorded
        offline in the store's journal and sent to the catalog by the next `satchel push`; nothing goes over
        the network now. Answers what was added, removed or changed, and the asset's tags after it."""
        if asset_types is None and description is None:
            raise ToolError("update_asset needs asset_types (the tags the asset should carry) or description, "
                            "or both")
        with self.turn() as ml:
            if ml.store.read_only:
                raise StoreError(f"the store at {ml.store.root} is on read-only media: update_asset records its "
                                 "change in the store's journal, so it cannot run there (the read tools work); "
                                 "copy the store to a writable disk and serve that copy")
            done = ml.update_asset(rid, asset_types=asset_types, description=description)
            after = ml.lookup_asset(rid)
        return {"RID": after.rid, "added": done.added, "removed": done.removed,
                "description_changed": done.description_changed,
                "queued_for_push": bool(done.added or done.removed or done.description_changed),
                "Asset_Type": after.asset_types, "Description": after.description}

    def list_asset_executions(
        self,
        rid: AssetRID,
        asset_role: Annotated[Literal["Input", "Output"] | None, Field(
            description="Only links in this role: 'Output' for the execution that produced the asset, 'Input' "
                        "for executions that consumed it.")] = None,
    ) -> AssetExecutions:
        """The executions an asset is linked to, each with its role: Output (the execution produced it) or
        Input (the execution consumed it). Offline: reads the local store only."""
        with self.turn() as ml:
            asset = ml.lookup_asset(rid)  # what ml.list_asset_executions reads, and the RID to answer with
        return {"RID": asset.rid, "executions": [{"Execution": e.execution_rid, "Asset_Role": e.asset_role}
                                                 for e in asset.list_executions(asset_role)]}

    def lineage(
        self,
        rid: AnyRID,
        direction: Annotated[Literal["both", "backward", "forward"], Field(
            description="'backward': what it came from (its producing execution, that execution's inputs, their "
                        "producers...); 'forward': what came of it (executions that used it, what they wrote...); "
                        "'both'.")] = "both",
        depth: Annotated[int | None, Field(
            ge=0, description="How many execution hops to walk: the executions next to an asset (its producer, its "
                              "users) are 1 hop away, an execution itself 0; omit it to walk to the end.")] = None,
    ) -> dict[str, Any]:
        """The lineage graph of an asset or an execution, read from the local store: nodes (assets, executions,
        workflows, each with its RID and whether the catalog has it) and typed edges between them ('used':
        execution -> an asset it read; 'wasGeneratedBy': asset -> the execution that wrote it;
        'wasAssociatedWith': execution -> its workflow). The same data as `satchel lineage --format json`.
        Offline: answers for work recorded here and for catalog rows a `satchel pull` mirrored."""
        with self.turn() as ml:
            return ml.lineage(rid, depth=depth, direction=direction).as_dict()

    def status(self) -> dict[str, Any]:
        """What the catalog does not have yet, as `satchel status --json` prints it: executions, assets
        (count and bytes), execution links, vocabulary terms and tag or description changes waiting for the
        next `satchel push`, failed items, conflicts, and the store's path and remote. Offline."""
        with self.turn() as ml:
            return ml.status()


# --- the server ----------------------------------------------------------------------------------

INSTRUCTIONS = """\
Tools over one satchel store: a local, offline record of ML assets (files such as models and \
data) and the executions (runs of a workflow) that produced or consumed them, mirroring a DERIVA \
catalog. Everything is named by a RID, a short id such as '1-ABC2'. Assets carry tags: terms of the \
Asset_Type vocabulary (e.g. 'Model_File'). The tools read the local store; update_asset records a \
change there, which the user's next `satchel push` sends to the catalog. No tool moves file bytes \
or uses the network."""

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)
#: update_asset sets a tag set (it may remove tags): idempotent, not purely additive
UPDATES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


def satchel_version() -> str:
    try:
        return version("satchel")
    except PackageNotFoundError:
        return ""


def build_server(tools: StoreTools, *, log_level: LogLevel = "WARNING") -> MCPServer:
    """An MCP server of ``tools`` (run it with ``.run("stdio")``; the caller keeps the store open)."""
    server: MCPServer = MCPServer("satchel", instructions=INSTRUCTIONS, version=satchel_version(),
                                  log_level=log_level)
    for fn in (tools.lookup_asset, tools.list_assets, tools.find_assets, tools.list_asset_executions,
               tools.lineage, tools.status):
        server.add_tool(fn, description=inspect.cleandoc(fn.__doc__ or ""), annotations=READS)
    server.add_tool(tools.update_asset, description=inspect.cleandoc(tools.update_asset.__doc__ or ""),
                    annotations=UPDATES)
    return server
