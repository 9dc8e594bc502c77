"""A small table-definition builder and the emulator's starting catalog.

The emulator's catalog is built here, by code, in the shape ERMrest 0.5.0
serves for a catalog made by deriva-ml's schema code: the ``deriva-ml`` ML
schema, a domain schema (``test-schema``) with the asset tables ``Image`` and
``Model``, the ``WWW`` web-content schema and ERMrest's own ``public`` tables.
On top of deriva-ml 1.24.0's shape it carries main's additions: the
``Execution_Status`` vocabulary (with an FK from ``Execution.Status``) and the
three ``*_Duration`` columns of ``Execution``.

Definitions are plain JSON-shaped dicts as ERMrest's ``/schema`` speaks them,
without model RIDs (the catalog assigns those).
"""

from __future__ import annotations

import copy
from typing import Any

ML_SCHEMA = "deriva-ml"
DOMAIN_SCHEMA = "test-schema"

ASSET_ANNOTATION = "tag:isrd.isi.edu,2017:asset"
DISPLAY_ANNOTATION = "tag:misd.isi.edu,2015:display"

ASSET_TYPE_TERMS = (
    "Execution_Config",
    "Runtime_Env",
    "Hydra_Config",
    "Deriva_Config",
    "Metrics_File",
    "Execution_Metadata",
    "Execution_Asset",
    "File",
    "Input_File",
    "Output_File",
    "Model_File",
    "Notebook_Output",
)
ASSET_ROLE_TERMS = ("Input", "Output")
EXECUTION_STATUS_TERMS = (
    "Created",
    "Running",
    "Stopped",
    "Failed",
    "Pending_Upload",
    "Uploaded",
    "Aborted",
)

_DOMAIN_TYPES = {
    "markdown": "text",
    "ermrest_curie": "text",
    "ermrest_uri": "text",
    "ermrest_rid": "text",
    "ermrest_rcb": "text",
    "ermrest_rmb": "text",
    "ermrest_rct": "timestamptz",
    "ermrest_rmt": "timestamptz",
}

SYSTEM_COLUMNS = ("RID", "RCT", "RMT", "RCB", "RMB")


def column_type(typename: str) -> dict[str, Any]:
    """The ``type`` document of a column of type ``typename``."""
    if typename.endswith("[]"):
        return {"typename": typename, "is_array": True, "base_type": column_type(typename[:-2])}
    if typename in _DOMAIN_TYPES:
        return {"typename": typename, "is_domain": True, "base_type": {"typename": _DOMAIN_TYPES[typename]}}
    return {"typename": typename}


def column(
    name: str,
    typename: str = "text",
    *,
    nullok: bool = True,
    default: Any = None,
    comment: str | None = None,
    annotations: dict | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "type": column_type(typename),
        "nullok": nullok,
        "default": default,
        "comment": comment,
        "annotations": annotations or {},
        "acls": {},
        "acl_bindings": {},
    }


def system_columns() -> list[dict[str, Any]]:
    """The five system columns, typed and defaulted as ERMrest stores them."""
    rid_default = "_ermrest.urlb32_encode(nextval('_ermrest.rid_seq'::regclass))"
    spec = [
        ("RID", "ermrest_rid", False, rid_default, "Record ID"),
        ("RCT", "ermrest_rct", False, "now()", "Creation Time"),
        ("RMT", "ermrest_rmt", False, "now()", "Modified Time"),
        ("RCB", "ermrest_rcb", True, "_ermrest.current_client()", "Created By"),
        ("RMB", "ermrest_rmb", True, "_ermrest.current_client()", "Modified By"),
    ]
    return [
        column(n, t, nullok=ok, default=d, annotations={DISPLAY_ANNOTATION: {"name": label}})
        for n, t, ok, d, label in spec
    ]


def key(schema: str, name: str, columns: list[str]) -> dict[str, Any]:
    return {"names": [[schema, name]], "unique_columns": list(columns), "comment": None, "annotations": {}}


def fkey(
    schema: str,
    table: str,
    columns: list[str],
    ref_schema: str,
    ref_table: str,
    ref_columns: list[str],
    *,
    name: str | None = None,
    on_delete: str = "NO ACTION",
    on_update: str = "NO ACTION",
) -> dict[str, Any]:
    return {
        "names": [[schema, name or f"{table}_{'_'.join(columns)}_fkey"]],
        "foreign_key_columns": [
            {"schema_name": schema, "table_name": table, "column_name": c} for c in columns
        ],
        "referenced_columns": [
            {"schema_name": ref_schema, "table_name": ref_table, "column_name": c} for c in ref_columns
        ],
        "on_delete": on_delete,
        "on_update": on_update,
        "comment": None,
        "annotations": {},
        "acls": {},
        "acl_bindings": {},
    }


def table(
    schema: str,
    name: str,
    columns: list[dict[str, Any]],
    *,
    keys: list[list[str]] = (),
    key_names: dict[tuple[str, ...], str] | None = None,
    fkeys: list[dict[str, Any]] = (),
    client_fkeys: bool = True,
    rid_key_name: str | None = None,
    comment: str | None = None,
    annotations: dict | None = None,
) -> dict[str, Any]:
    """A table document with the system columns, the RID key and RCB/RMB FKs."""
    key_names = key_names or {}
    all_keys = [key(schema, rid_key_name or f"{name}_RID_key", ["RID"])]
    for cols in keys:
        all_keys.append(key(schema, key_names.get(tuple(cols), f"{name}_{'_'.join(cols)}_key"), cols))
    all_fkeys = []
    if client_fkeys:
        for col in ("RCB", "RMB"):
            all_fkeys.append(fkey(schema, name, [col], "public", "ERMrest_Client", ["ID"]))
    all_fkeys.extend(fkeys)
    return {
        "schema_name": schema,
        "table_name": name,
        "kind": "table",
        "comment": comment,
        "annotations": annotations or {},
        "acls": {},
        "acl_bindings": {},
        "column_definitions": system_columns() + list(columns),
        "keys": all_keys,
        "foreign_keys": all_fkeys,
    }


def vocabulary(schema: str, name: str, curie_prefix: str) -> dict[str, Any]:
    """A deriva-ml vocabulary table (ID, URI, Name, Description, Synonyms)."""
    cols = [
        column("ID", "ermrest_curie", nullok=False, default=f"{curie_prefix}:{{RID}}",
               comment="The preferred Compact URI (CURIE) for this term."),
        column("URI", "ermrest_uri", nullok=False, default="/id/{RID}",
               comment="The preferred URI for this term."),
        column("Name", "text", nullok=False, comment="The preferred human-readable name for this term."),
        column("Description", "markdown", nullok=False,
               comment="A longer human-readable description of this term."),
        column("Synonyms", "text[]", comment="Alternate human-readable names for this term."),
    ]
    return table(schema, name, cols, keys=[["ID"], ["URI"], ["Name"]])


def asset(schema: str, name: str, url_pattern: str, *, extra: list[dict] = (), fkeys=(), rid_suffix="") -> dict:
    """An asset table: URL (annotated, unique), Filename, Description, Length, MD5."""
    annotation = {
        ASSET_ANNOTATION: {
            "filename_column": "Filename",
            "byte_count_column": "Length",
            "md5": "MD5",
            "url_pattern": url_pattern,
        }
    }
    cols = [
        column("URL", "text", nullok=False, comment="URL to the asset", annotations=annotation),
        column("Filename", "text", comment="Filename of the asset that was uploaded"),
        column("Description", "markdown", comment="Description of the asset"),
        column("Length", "int8", nullok=False, comment="Asset length (bytes)"),
        column("MD5", "text", nullok=False, comment="Asset content MD5 checksum"),
        *extra,
    ]
    return table(
        schema, name, cols, keys=[["URL"]], fkeys=list(fkeys),
        rid_key_name=f"{name}_RID_key{rid_suffix}",
        key_names={("URL",): f"{name}_URL_key{rid_suffix}"},
    )


def association(schema: str, name: str, ends: list[tuple[str, str, str, str, bool]], extra=()) -> dict:
    """An association table; ``ends`` are (column, ref schema, ref table, ref column, in key)."""
    cols = [column(c, "text", nullok=False) for c, *_ in ends] + list(extra)
    fks = [
        fkey(schema, name, [c], rs, rt, [rc], on_delete="CASCADE", on_update="CASCADE")
        for c, rs, rt, rc, _ in ends
    ]
    key_cols = [c for c, *_rest, in_key in ends if in_key]
    return table(schema, name, cols, keys=[key_cols], fkeys=fks,
                 key_names={tuple(key_cols): f"{name}_assoc_key"})


def asset_tables(schema: str, name: str, url_pattern: str, **kw) -> list[dict]:
    """An asset table with its ``_Asset_Type`` and ``_Execution`` associations."""
    return [
        asset(schema, name, url_pattern, **kw),
        association(schema, f"{name}_Asset_Type", [
            (name, schema, name, "RID", True),
            ("Asset_Type", ML_SCHEMA, "Asset_Type", "Name", True),
        ]),
        association(schema, f"{name}_Execution", [
            (name, schema, name, "RID", True),
            ("Execution", ML_SCHEMA, "Execution", "RID", True),
            ("Asset_Role", ML_SCHEMA, "Asset_Role", "Name", False),
        ]),
    ]


def public_tables() -> list[dict]:
    """ERMrest's own tables in ``public`` (clients, groups, RID leases)."""
    client = table("public", "ERMrest_Client", [
        column("ID", "text", nullok=False),
        column("Display_Name"), column("Full_Name"), column("Email"),
        column("Client_Object", "jsonb", nullok=False),
    ], keys=[["ID"]], client_fkeys=False, rid_key_name="ERMrest_Client_pkey")
    group = table("public", "ERMrest_Group", [
        column("ID", "text", nullok=False), column("URL"), column("Display_Name"), column("Description"),
    ], keys=[["ID"]], client_fkeys=False, rid_key_name="ERMrest_Group_pkey")
    lease = table("public", "ERMrest_RID_Lease", [column("ID")], keys=[["RCB", "ID"]],
                  client_fkeys=False, rid_key_name="ERMrest_RID_Lease_pkey")
    lease["acl_bindings"] = {
        "lessee_access": {
            "types": ["select", "update", "delete"],
            "projection": ["RCB"],
            "projection_type": "acl",
            "scope_acl": ["*"],
        }
    }
    for t in (client, group, lease):
        for c in t["column_definitions"]:
            if c["name"] in SYSTEM_COLUMNS:
                c["annotations"] = {}
    return [client, group, lease]


def ml_tables() -> list[dict]:
    s = ML_SCHEMA
    ml = [vocabulary(s, v, DOMAIN_SCHEMA) for v in
          ("Asset_Role", "Asset_Type", "Dataset_Type", "Feature_Name", "Execution_Status")]
    ml.append(vocabulary(s, "Workflow_Type", ML_SCHEMA))
    ml.append(table(s, "Workflow", [
        column("Name"), column("Description", "markdown"), column("URL", "ermrest_uri"),
        column("Checksum"), column("Version"),
    ]))
    ml.append(association(s, "Workflow_Workflow_Type", [
        ("Workflow", s, "Workflow", "RID", True), ("Workflow_Type", s, "Workflow_Type", "Name", True),
    ]))
    ml.append(table(s, "Execution", [
        column("Workflow"), column("Description", "markdown"), column("Duration"),
        column("Status"), column("Status_Detail"),
        column("Execution_Duration"), column("Download_Duration"), column("Upload_Duration"),
    ], fkeys=[
        fkey(s, "Execution", ["Workflow"], s, "Workflow", ["RID"]),
        fkey(s, "Execution", ["Status"], s, "Execution_Status", ["Name"]),
    ]))
    ml.append(association(s, "Execution_Execution", [
        ("Execution", s, "Execution", "RID", True), ("Nested_Execution", s, "Execution", "RID", True),
    ], extra=[column("Sequence", "int4")]))
    ml.append(table(s, "Dataset", [
        column("Description", "markdown"), column("Deleted", "boolean"), column("Version"),
    ], fkeys=[fkey(s, "Dataset", ["Version"], s, "Dataset_Version", ["RID"],
                   name="Dataset_Version_fkey", on_delete="CASCADE", on_update="CASCADE")]))
    ml.append(table(s, "Dataset_Version", [
        column("Version", default="0.1.0"), column("Description", "markdown"), column("Dataset"),
        column("Execution"), column("Minid"), column("Minid_Spec_Hash"), column("Snapshot"),
    ], keys=[["Dataset", "Version"]], fkeys=[
        fkey(s, "Dataset_Version", ["Dataset"], s, "Dataset", ["RID"]),
        fkey(s, "Dataset_Version", ["Execution"], s, "Execution", ["RID"]),
    ]))
    for other in ("Dataset", "Dataset_Type", "Execution", "File"):
        ref = (other, s, other, "Name" if other == "Dataset_Type" else "RID", True)
        if other == "Dataset":
            ref = ("Nested_Dataset", s, "Dataset", "RID", True)
        ml.append(association(s, f"Dataset_{other}", [("Dataset", s, "Dataset", "RID", True), ref]))
    pattern = "/hatrac/metadata/{{MD5}}.{{Filename}}"
    ml += asset_tables(s, "Execution_Metadata", pattern)
    ml += asset_tables(s, "Execution_Asset", pattern)
    ml += asset_tables(s, "File", pattern, rid_suffix="1")
    return ml


def _domain_url_pattern(schema: str, table: str) -> str:
    """The web upload UI's object name template for an asset table outside deriva-ml."""
    return f"/hatrac/{{{{$catalog.id}}}}/{schema}/{table}/{{{{{{MD5}}}}}}.{{{{#encode}}}}{{{{{{Filename}}}}}}{{{{/encode}}}}"


def domain_tables(schema: str = DOMAIN_SCHEMA) -> list[dict]:
    out = []
    for name in ("Image", "Model"):
        out += asset_tables(schema, name, _domain_url_pattern(schema, name))
    return out


def www_tables() -> list[dict]:
    page = table("WWW", "Page", [column("Title", nullok=False), column("Content", "markdown")],
                 keys=[["Title"]])
    file = asset("WWW", "File", _domain_url_pattern("WWW", "File"),
                 extra=[column("Page", nullok=False)],
                 fkeys=[fkey("WWW", "File", ["Page"], "WWW", "Page", ["RID"])])
    return [page, file]


def schema_doc(name: str, tables: list[dict], *, comment=None, annotations=None) -> dict:
    return {
        "schema_name": name,
        "comment": comment,
        "annotations": annotations or {},
        "acls": {},
        "tables": {t["table_name"]: t for t in tables},
    }


def deriva_ml_catalog() -> dict[str, dict]:
    """The starting catalog's schemas, by name (a fresh deep copy each call)."""
    style = {"name_style": {"underline_space": True}}
    schemas = {
        "public": schema_doc("public", public_tables(), comment="standard public schema"),
        ML_SCHEMA: schema_doc(ML_SCHEMA, ml_tables(), annotations=style),
        DOMAIN_SCHEMA: schema_doc(DOMAIN_SCHEMA, domain_tables(), annotations=style),
        "WWW": schema_doc("WWW", www_tables(),
                          comment="Schema for tables that will be displayed as web content"),
    }
    return copy.deepcopy(schemas)


def empty_catalog() -> dict[str, dict]:
    """What a new catalog (``POST /ermrest/catalog``) starts with."""
    return {"public": schema_doc("public", public_tables(), comment="standard public schema")}


def seed_rows() -> dict[tuple[str, str], list[dict]]:
    """Vocabulary terms the starting catalog holds, by (schema, table)."""
    def terms(names):
        return [{"Name": n, "Description": n.replace("_", " ")} for n in names]

    return {
        (ML_SCHEMA, "Asset_Type"): terms(ASSET_TYPE_TERMS + ("Image", "Model")),
        (ML_SCHEMA, "Asset_Role"): terms(ASSET_ROLE_TERMS),
        (ML_SCHEMA, "Execution_Status"): terms(EXECUTION_STATUS_TERMS),
    }
