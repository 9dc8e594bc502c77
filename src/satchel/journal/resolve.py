"""Any RID a user saw (provisional, leased, the server's, or an alias) to its journal row, or a clear error."""

from __future__ import annotations

from sqlalchemy import Connection, select

from satchel.errors import UnknownRIDError
from satchel.journal import queries as q
from satchel.journal.models import VocabularyTerm


def row_id(conn: Connection, rid: str, kind: str, fix: str) -> int:
    """The journal id of the ``kind`` row (execution, workflow, asset) named by ``rid``; ``fix`` ends the error."""
    if not isinstance(rid, str) or not rid:
        raise UnknownRIDError(f"{rid!r} is not a RID; pass the RID of a {kind} (a non-empty string)")
    found = q.resolve_rid(conn, rid)
    if found is None or found[0] != kind:
        raise UnknownRIDError(f"no {kind} has RID {rid} in this store; {fix}")
    return found[1]


def asset_id(conn: Connection, rid: str) -> int:
    """The journal id of the asset named by ``rid``, else an error naming the fix."""
    if not isinstance(rid, str) or not rid:
        raise UnknownRIDError(f"{rid!r} is not a RID; pass the RID of an asset (a non-empty string)")
    found = q.resolve_rid(conn, rid)
    if found is None:
        term = conn.execute(
            select(VocabularyTerm.vocabulary, VocabularyTerm.name)
            .where((VocabularyTerm.rid == rid) | (VocabularyTerm.remote_rid == rid))
        ).first()
        if term is not None:
            raise UnknownRIDError(f"RID {rid} is the {term.vocabulary} term {term.name!r}, not an asset; "
                                  "pass an asset's RID")
        raise UnknownRIDError(
            f"no asset has RID {rid} in this store; while online, pull it with `satchel pull --asset {rid}`"
        )
    if found[0] != "asset":
        raise UnknownRIDError(f"RID {rid} is an {found[0]}, not an asset; pass an asset's RID")
    return found[1]
