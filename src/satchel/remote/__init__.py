"""The remote layer: ERMrest and Hatrac clients over one httpx session.

It moves rows and bytes and knows nothing of executions. Start from
:class:`Remote` (or build a :class:`RemoteSession` and the two clients
yourself). Errors are :class:`satchel.errors.RemoteError` subclasses.
"""

from __future__ import annotations

from satchel.remote.auth import Credential, load_credential
from satchel.remote.catalog import CatalogClient
from satchel.remote.hatrac import HatracClient, ObjectInfo, UploadJob
from satchel.remote.model import AssetAssociations, CatalogModel, Column, ForeignKey, Key, Table
from satchel.remote.retry import RetryPolicy
from satchel.remote.session import RemoteSession


class Remote:
    """A DERIVA server: one session shared by its catalog and object store clients."""

    def __init__(self, url: str, catalog_id: str | int = "1", **session_options):
        self.session = RemoteSession(url, **session_options)
        self.catalog = CatalogClient(self.session, catalog_id)
        self.hatrac = HatracClient(self.session)

    def __repr__(self) -> str:
        return f"Remote({self.session!r}, catalog={self.catalog.catalog_id!r})"

    def whoami(self) -> dict | None:
        return self.session.whoami()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "Remote":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = [
    "AssetAssociations",
    "CatalogClient",
    "CatalogModel",
    "Column",
    "Credential",
    "ForeignKey",
    "HatracClient",
    "Key",
    "ObjectInfo",
    "Remote",
    "RemoteSession",
    "RetryPolicy",
    "Table",
    "UploadJob",
    "load_credential",
]
