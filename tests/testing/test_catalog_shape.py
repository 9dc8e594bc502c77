"""The emulator's catalog model against a real ERMrest /schema document.

CI keeps ``../shared/reference`` beside the checkout; elsewhere this skips.
"""

from __future__ import annotations

import json
from pathlib import Path

import os

import pytest

from satchel.testing.catalog_def import deriva_ml_catalog

#: a real deriva-ml catalog's /schema document: SATCHEL_REFERENCE_SCHEMA, else the team's reference copy beside
#: the repository (../shared/reference), if either is there
REFERENCE = Path(os.environ.get("SATCHEL_REFERENCE_SCHEMA", "/work/shared/reference/deriva-ml-catalog-schema.json"))
for parent in () if "SATCHEL_REFERENCE_SCHEMA" in os.environ else Path(__file__).resolve().parents:
    candidate = parent.parent / "shared" / "reference" / "deriva-ml-catalog-schema.json"
    if candidate.exists():
        REFERENCE = candidate
        break

#: what the emulator serves beyond deriva-ml 1.24.0: main's additions
EXTRA_TABLES = {("deriva-ml", "Execution_Status")}
EXTRA_COLUMNS = {
    ("deriva-ml", "Execution", "Execution_Duration"),
    ("deriva-ml", "Execution", "Download_Duration"),
    ("deriva-ml", "Execution", "Upload_Duration"),
}
EXTRA_FKEYS = {("deriva-ml", "Execution_Status_fkey")}


def asset_annotation(column: dict) -> dict:
    ann = dict((column.get("annotations") or {}).get("tag:isrd.isi.edu,2017:asset", {}))
    ann.pop("display", None)  # chaise preview settings
    return ann


def shape(schemas: dict) -> dict:
    tables = {}
    for sname, sdoc in schemas.items():
        for tname, t in sdoc["tables"].items():
            tables[(sname, tname)] = {
                "columns": {
                    c["name"]: (c["type"], c["nullok"], asset_annotation(c))
                    for c in t["column_definitions"]
                },
                "keys": sorted((tuple(k["unique_columns"]), tuple(k["names"][0])) for k in t["keys"]),
                "fkeys": {
                    tuple(f["names"][0]): (
                        tuple(c["column_name"] for c in f["foreign_key_columns"]),
                        tuple((c["schema_name"], c["table_name"], c["column_name"])
                              for c in f["referenced_columns"]),
                        f["on_delete"], f["on_update"],
                    )
                    for f in t["foreign_keys"]
                },
            }
    return tables


@pytest.mark.skipif(not REFERENCE.exists(), reason="reference catalog document not available")
def test_served_model_matches_reference_structurally():
    reference = shape(json.loads(REFERENCE.read_text())["schemas"])
    ours = shape(deriva_ml_catalog())
    assert set(ours) - set(reference) == EXTRA_TABLES
    assert set(reference) <= set(ours)
    for name, ref in reference.items():
        mine = ours[name]
        extra_cols = {c for c in mine["columns"] if (*name, c) in EXTRA_COLUMNS}
        assert {k: v for k, v in mine["columns"].items() if k not in extra_cols} == ref["columns"], name
        assert mine["keys"] == ref["keys"], name
        assert {k: v for k, v in mine["fkeys"].items() if k not in EXTRA_FKEYS} == ref["fkeys"], name
