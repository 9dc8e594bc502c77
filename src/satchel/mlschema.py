"""What every deriva-ml catalog has: the ML schema's asset tables and seeded vocabularies.

A new store starts with these, so everything works offline before the first
pull. A pull later replaces guesses with the catalog's own model.
"""

from __future__ import annotations

ML_SCHEMA = "deriva-ml"

#: asset tables of the ML schema itself
ML_ASSET_TABLES = ("Execution_Metadata", "Execution_Asset", "File")

#: the other tables of the ML schema (deriva-ml's own model), which offline registration must refuse (F16)
ML_OTHER_TABLES = frozenset({
    "Asset_Role", "Asset_Type", "Dataset", "Dataset_Dataset", "Dataset_Dataset_Type", "Dataset_Execution",
    "Dataset_File", "Dataset_Type", "Dataset_Version", "Execution", "Execution_Execution", "Feature_Name",
    "Workflow", "Workflow_Type", "Workflow_Workflow_Type",
})
#: the vocabularies of the ML schema; other vocabularies (a domain's own) are accepted offline, checked at sync
ML_VOCABULARIES = frozenset({"Asset_Role", "Asset_Type", "Dataset_Type", "Feature_Name", "Workflow_Type"})
#: the association tables every asset table has: <Asset>_Asset_Type and <Asset>_Execution
ASSOCIATION_SUFFIXES = ("_Asset_Type", "_Execution")


def not_a_vocabulary(name: str, asset_tables) -> str | None:
    """Why ``name`` is known not to be a vocabulary table (None when it may be one)."""
    if name in ML_VOCABULARIES:
        return None
    if name in asset_tables:
        return "an asset table"
    return not_an_asset_table(name, asset_tables)


def not_an_asset_table(name: str, asset_tables) -> str | None:
    """Why ``name`` is known not to be an asset table (None when it may be one), with no model pulled."""
    if name in ML_OTHER_TABLES:
        return f"a table of the {ML_SCHEMA} schema"
    if name.startswith("ERMrest_"):
        return "an ERMrest system table"
    for suffix in ASSOCIATION_SUFFIXES:
        owner = name[: -len(suffix)] if name.endswith(suffix) else None
        if owner in asset_tables:
            return f"the association table of asset table {owner!r}"
    return None


INPUT_FILE = "Input_File"
OUTPUT_FILE = "Output_File"
DIRECTIONAL_TAGS = frozenset({INPUT_FILE, OUTPUT_FILE})

ASSET_TYPE_TERMS: dict[str, str] = {
    "Execution_Config": "Configuration files of an execution",
    "Runtime_Env": "The runtime environment of an execution",
    "Hydra_Config": "Hydra configuration files",
    "Deriva_Config": "The deriva-ml configuration of an execution",
    "Metrics_File": "Metrics written during an execution",
    "Execution_Metadata": "Metadata about an execution",
    "Execution_Asset": "A file an execution produced or used",
    "File": "A file",
    INPUT_FILE: "A file an execution read",
    OUTPUT_FILE: "A file an execution wrote",
    "Model_File": "A trained model",
    "Notebook_Output": "Output of a notebook",
}

ASSET_ROLES: dict[str, str] = {"Input": "An input of an execution", "Output": "An output of an execution"}

#: the seeded vocabularies, by name
SEEDED_VOCABULARIES: dict[str, dict[str, str]] = {
    "Asset_Type": ASSET_TYPE_TERMS,
    "Asset_Role": ASSET_ROLES,
}

#: statuses written by deriva-ml main; pulls also accept v1.24's free-text values
EXECUTION_STATUSES = ("Created", "Running", "Stopped", "Failed", "Pending_Upload", "Uploaded", "Aborted")
