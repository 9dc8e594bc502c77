"""A lineage graph as a W3C PROV document, with the ``prov`` package.

The mapping (docs/lineage.md has it as a table):

* an asset is a ``prov:Entity``, an execution a ``prov:Activity`` (its start and
  stop times when known), a workflow a ``prov:Agent`` of type
  ``prov:SoftwareAgent``;
* an ``Input`` link is ``used``, an ``Output`` link ``wasGeneratedBy``, an
  execution's workflow ``wasAssociatedWith``.

Identifiers: a row the catalog has is named by DERIVA's resolvable RID URL,
``https://<host>/id/<catalog>/<RID>`` (prefix ``catalog``); a row recorded here
and not yet pushed by ``urn:satchel:store:<store id>:<RID>`` (prefix
``store``), which names it without claiming a catalog has it. satchel's own
attributes are in the ``satchel`` namespace, ``urn:satchel:terms#``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from prov.model import PROV, PROV_LABEL, PROV_ROLE, PROV_TYPE, Namespace, ProvDocument, QualifiedName

from satchel.provenance.nodes import AssetNode, CatalogIdentity, ExecutionNode, LineageEdge, Node

TERMS_URI = "urn:satchel:terms#"


def catalog_uri(catalog: CatalogIdentity) -> str:
    """The namespace of rows the catalog has: ``<namespace><RID>`` is DERIVA's resolvable RID URL."""
    return f"https://{catalog.hostname}/id/{catalog.catalog_id}/"


def store_uri(catalog: CatalogIdentity) -> str:
    """The namespace of rows recorded in this store and not on the catalog yet."""
    return f"urn:satchel:store:{catalog.store_id}:"


def prov_document(nodes: Iterable[Node], edges: Iterable[LineageEdge], catalog: CatalogIdentity) -> ProvDocument:
    doc = ProvDocument()
    terms = doc.add_namespace("satchel", TERMS_URI)
    on_catalog = doc.add_namespace("catalog", catalog_uri(catalog))
    in_store = doc.add_namespace("store", store_uri(catalog))
    names: dict[str, QualifiedName] = {}
    for node in nodes:
        name = on_catalog[node.catalog_rid] if node.catalog_rid else in_store[node.local_rid]
        names[node.rid] = name
        attributes = _common(node, terms)
        if isinstance(node, AssetNode):
            doc.entity(name, _asset(node, terms) + attributes)
        elif isinstance(node, ExecutionNode):
            doc.activity(name, _time(node.start_time), _time(node.stop_time), _execution(node, terms) + attributes)
        else:
            doc.agent(name, [
                (PROV_TYPE, PROV["SoftwareAgent"]), (PROV_LABEL, node.name), *_present(terms, {
                    "name": node.name, "url": node.url, "checksum": node.checksum, "version": node.version,
                }),
            ] + attributes)
    for edge in edges:
        source, target = names[edge.source], names[edge.target]
        if edge.kind == "used":
            doc.used(source, target, other_attributes=[(PROV_ROLE, "Input")])
        elif edge.kind == "wasGeneratedBy":
            doc.wasGeneratedBy(source, target, other_attributes=[(PROV_ROLE, "Output")])
        else:
            doc.wasAssociatedWith(source, target)
    return doc


def _asset(node: AssetNode, terms: Namespace) -> list[tuple[Any, Any]]:
    return [
        (PROV_TYPE, terms["Asset"]), (PROV_LABEL, node.filename),
        *_present(terms, {"table": node.table, "filename": node.filename, "length": node.length, "md5": node.md5,
                          "description": node.description}),
        *[(terms["assetType"], t) for t in node.types],
    ]


def _execution(node: ExecutionNode, terms: Namespace) -> list[tuple[Any, Any]]:
    label = [(PROV_LABEL, node.description)] if node.description else []
    return [(PROV_TYPE, terms["Execution"]), *label,
            *_present(terms, {"status": node.status, "description": node.description})]


def _common(node: Node, terms: Namespace) -> list[tuple[Any, Any]]:
    """What every row carries: its RID as shown, the RID it was recorded under, and its sync state."""
    found = [(terms["rid"], node.rid), (terms["syncState"], node.sync_state)]
    if node.local_rid != node.rid:
        found.append((terms["recordedAs"], node.local_rid))
    return found


def _present(terms: Namespace, values: dict[str, Any]) -> list[tuple[Any, Any]]:
    return [(terms[key], value) for key, value in values.items() if value not in (None, "")]


def _time(stored: str | None) -> datetime | None:
    if not stored:
        return None
    value = datetime.fromisoformat(stored)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
