"""What every deriva-ml catalog has: the ML schema's asset tables and seeded vocabularies.

A new store starts with these, so everything works offline before the first
pull. A pull later replaces guesses with the catalog's own model.
"""

from __future__ import annotations

import hashlib
import os
import re
from enum import Enum
from urllib.parse import quote

ML_SCHEMA = "deriva-ml"

#: deriva-ml's type of RID arguments (a catalog RID, or here also a provisional one)
RID = str


class _Names(str, Enum):
    """An enum of catalog names whose members are the names themselves (deriva-ml's ``StrEnum``s)."""

    def __str__(self) -> str:
        return self.value


class MLVocab(_Names):
    """The vocabularies of the ML schema (deriva-ml's ``MLVocab``)."""

    dataset_type = "Dataset_Type"
    workflow_type = "Workflow_Type"
    asset_type = "Asset_Type"
    asset_role = "Asset_Role"
    execution_status = "Execution_Status"
    feature_name = "Feature_Name"


class MLAsset(_Names):
    """The asset tables of the ML schema (deriva-ml's ``MLAsset``)."""

    execution_metadata = "Execution_Metadata"
    execution_asset = "Execution_Asset"


class MLTable(_Names):
    """Tables of the ML schema (deriva-ml's ``MLTable``)."""

    dataset = "Dataset"
    workflow = "Workflow"
    file = "File"
    asset = "Asset"
    execution = "Execution"
    execution_execution = "Execution_Execution"
    dataset_version = "Dataset_Version"
    execution_metadata = "Execution_Metadata"
    execution_asset = "Execution_Asset"


class ExecMetadataType(_Names):
    """``Asset_Type`` terms of an execution's metadata files (deriva-ml's ``ExecMetadataType``)."""

    execution_config = "Execution_Config"
    runtime_env = "Runtime_Env"
    hydra_config = "Hydra_Config"
    deriva_config = "Deriva_Config"
    metrics_file = "Metrics_File"


class ExecAssetType(_Names):
    """``Asset_Type`` terms of an execution's files (deriva-ml's ``ExecAssetType``)."""

    input_file = "Input_File"
    output_file = "Output_File"
    notebook_output = "Notebook_Output"
    model_file = "Model_File"

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

#: the Workflow_Type terms deriva-ml seeds a new catalog with (a push adds any a catalog lacks)
WORKFLOW_TYPE_TERMS: dict[str, str] = {
    "Training": "Model training",
    "Testing": "Model testing",
    "Prediction": "Prediction with a trained model",
    "Feature_Creation": "Creation of feature values",
    "Visualization": "Visualization of data or results",
    "Analysis": "Analysis of data or results",
    "Ingest": "Loading data into the catalog",
    "Data_Cleaning": "Cleaning of data",
    "Dataset_Management": "Creation and management of datasets",
}

#: the seeded vocabularies, by name
SEEDED_VOCABULARIES: dict[str, dict[str, str]] = {
    "Asset_Type": ASSET_TYPE_TERMS,
    "Asset_Role": ASSET_ROLES,
    "Workflow_Type": WORKFLOW_TYPE_TERMS,
}

#: statuses written by deriva-ml main; pulls also accept v1.24's free-text values
EXECUTION_STATUSES = ("Created", "Running", "Stopped", "Failed", "Pending_Upload", "Uploaded", "Aborted")


# --- Hatrac object names ----------------------------------------------------------------------


def hatrac_url(table: str, md5: str, filename: str) -> str:
    """The MD5-keyed object name deriva-ml uses: ``/hatrac/<Table>/<md5>.<filename>``, percent-encoded.

    A file name too long for Hatrac's storage is shortened (:func:`leaf_name`); the asset's
    ``Filename`` keeps it whole.
    """
    return f"/hatrac/{_quoted(table)}/{leaf_name(md5 + '.', filename)}"


#: Hatrac's filesystem backend keeps each version as the file ``<last name component>:<version>`` (a
#: 26-character version id) in its namespace's directory, so that component, as sent (percent-encoded),
#: may have at most 255 - 27 characters; a longer one gets 500 ``[Errno 36] File name too long`` and
#: leaves the name behind without content (measured on Hatrac 1.3, docs/remote.md)
MAX_LEAF = 228


def leaf_name(prefix: str, filename: str) -> str:
    """``prefix`` then ``filename``, percent-encoded, as a last name component that fits :data:`MAX_LEAF`.

    A filename too long for it keeps the start of its stem and its extension, with ``~`` and 8 hex
    digits of the whole name's SHA-256 between them, so that distinct names stay distinct.
    """
    head = _quoted(prefix)
    whole = head + _quoted(filename)
    if len(whole) <= MAX_LEAF:
        return whole
    stem, ext = os.path.splitext(filename)
    tag = "~" + hashlib.sha256(filename.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    tail = quote(ext, safe="")
    room = MAX_LEAF - len(head) - len(tag) - len(tail)
    if room < 0:  # an extension longer than the room: it goes too
        tail, room = "", room + len(tail)
    if room < 0:
        raise ValueError(f"a name prefix of {len(head)} characters leaves no room in {MAX_LEAF}")
    kept: list[str] = []
    for ch in stem:
        piece = quote(ch, safe="")
        if len(piece) > room:
            break
        kept.append(piece)
        room -= len(piece)
    return head + "".join(kept) + tag + tail


#: characters ``quote(..., safe='')`` leaves as they are
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _quoted(name: str) -> str:
    return name if _UNRESERVED.fullmatch(name) else quote(name, safe="")
