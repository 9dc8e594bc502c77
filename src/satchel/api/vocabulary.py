"""Vocabulary calls of ``DerivaML``: terms of ``Asset_Type``, ``Workflow_Type`` and the catalog's own vocabularies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from satchel.api.records import VocabularyTerm
from satchel.api.workspace import Workspace
from satchel.errors import ExecutionError, NotFoundError
from satchel.journal import queries as q
from satchel.journal import read_transaction, write_transaction
from satchel.mlschema import ML_VOCABULARIES, not_a_vocabulary


class VocabularyCalls:
    workspace: Workspace

    def add_term(
        self,
        table: str,
        term_name: str,
        description: str = "",
        synonyms: Sequence[str] | None = None,
        exists_ok: bool = True,
    ) -> VocabularyTerm:
        """Add a vocabulary term offline (e.g. a new ``Asset_Type``); it reaches the catalog at sync."""
        if not term_name or not isinstance(term_name, str):
            raise ValueError(f"a term needs a non-empty name, not {term_name!r}")
        table = str(table)  # deriva-ml's MLVocab members are strings
        with write_transaction(self.workspace.engine) as conn:
            reason = not_a_vocabulary(table, q.asset_tables(conn))
            if reason:
                raise NotFoundError(
                    f"{table!r} is {reason}, not a vocabulary; add terms to a vocabulary table such as "
                    f"{', '.join(sorted(ML_VOCABULARIES))} (or one of the catalog's own)"
                )
            created = self.workspace.add_term(conn, table, term_name, description, list(synonyms or []))
        if not created and not exists_ok:
            raise ExecutionError(f"{table} term {term_name!r} already exists; pass exists_ok=True to reuse it")
        self.workspace.forget_model()
        return self.lookup_term(table, term_name)

    def lookup_term(self, table: str, term_name: str) -> VocabularyTerm:
        """The term named ``term_name`` (or having it as a synonym), else an error listing the known terms."""
        table = str(table)
        with read_transaction(self.workspace.engine) as conn:
            terms = q.terms(conn, table)
        row = terms.get(term_name) or next((t for t in terms.values() if term_name in (t.synonyms or [])), None)
        if row is None:
            self.workspace.check_terms(table, [term_name])  # raises with the known terms and the fix
            raise AssertionError("unreachable")
        return term_record(row)

    def list_vocabulary_terms(self, table: str) -> list[VocabularyTerm]:
        with read_transaction(self.workspace.engine) as conn:
            return [term_record(r) for r in q.terms(conn, str(table)).values()]


def term_record(row: Any) -> VocabularyTerm:
    return VocabularyTerm(
        vocabulary=row.vocabulary, name=row.name, description=row.description, synonyms=list(row.synonyms or []),
        rid=row.remote_rid or row.rid, synced=row.sync_state in ("synced", "remote"),
    )
