from __future__ import annotations

from satchel.remote import CatalogModel
from satchel.testing.catalog_def import deriva_ml_catalog


def model():
    return CatalogModel.from_json({"schemas": deriva_ml_catalog(), "snaptime": "X"})


def test_asset_tables_and_vocabularies_by_structure():
    m = model()
    assets = {str(t) for t in m.asset_tables()}
    assert {"test-schema:Image", "test-schema:Model", "deriva-ml:File", "deriva-ml:Execution_Metadata",
            "deriva-ml:Execution_Asset"} <= assets
    vocabs = {t.name for t in m.vocabularies()}
    assert {"Asset_Type", "Asset_Role", "Execution_Status", "Workflow_Type"} <= vocabs
    assert not m.table("deriva-ml", "Execution").is_asset


def test_associations_found_by_foreign_keys_not_names():
    m = model()
    # rename the association tables: recognition must not depend on names
    for old, new in (("Image_Asset_Type", "Tagging"), ("Image_Execution", "Provenance")):
        t = m.schemas["test-schema"].pop(old)
        t.name = new
        m.schemas["test-schema"][new] = t
    a = m.associations(m.table("test-schema", "Image"))
    assert a.asset_type.name == "Tagging" and (a.asset_type_column, a.type_column) == ("Image", "Asset_Type")
    assert a.execution.name == "Provenance"
    assert (a.execution_asset_column, a.execution_column, a.role_column) == ("Image", "Execution", "Asset_Role")


def test_not_an_asset_when_md5_nullable():
    doc = deriva_ml_catalog()
    for c in doc["test-schema"]["tables"]["Image"]["column_definitions"]:
        if c["name"] == "MD5":
            c["nullok"] = True
    m = CatalogModel.from_json({"schemas": doc})
    assert not m.table(None, "Image").is_asset
