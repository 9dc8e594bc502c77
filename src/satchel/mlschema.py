"""What every deriva-ml catalog has: the ML schema's asset tables and seeded vocabularies.

A new store starts with these, so everything works offline before the first
pull. A pull later replaces guesses with the catalog's own model.
"""

from __future__ import annotations

ML_SCHEMA = "deriva-ml"

#: asset tables of the ML schema itself
ML_ASSET_TABLES = ("Execution_Metadata", "Execution_Asset", "File")

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
