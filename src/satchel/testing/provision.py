"""A deriva-ml catalog on a real ERMrest + Hatrac, shaped like the emulator's catalog 1.

For benchmarks and conformance runs against a real server (``python -m bench --remote``,
``SATCHEL_TEST_DERIVA_URL``): the same model (:mod:`satchel.testing.catalog_def`), the same
seeded terms, write rights for the users named, and a Hatrac namespace per asset table in which
they may create objects. Needs an administrator's credential (one who may create catalogs and
top-level Hatrac namespaces; ``test1`` on the server of ``../shared/real-deriva``).

::

    python -m satchel.testing.provision http://127.0.0.1 --cookie "$(login.sh)" --grant test2
"""

from __future__ import annotations

import argparse
import sys

from satchel import errors
from satchel.remote import CatalogClient, Credential, Remote
from satchel.remote.model import CatalogModel
from satchel.testing.catalog_def import deriva_ml_catalog, seed_rows

#: the catalog ACLs a granted user is put in (select and enumerate are opened to everyone)
WRITE_ACLS = ("insert", "update", "delete")


def provision(url: str, credential: Credential, *, grant: list[str], catalog_id: str | None = None) -> str:
    """Create (or complete) the catalog and the namespaces; returns the catalog id. Safe to run again."""
    with Remote(url, "1", credential=credential) as admin:
        session = admin.session
        if catalog_id is None:
            catalog_id = str(session.json("POST", "/ermrest/catalog", idempotent=False, expect=(201,))["id"])
        base = f"/ermrest/catalog/{catalog_id}"
        schemas = {k: v for k, v in deriva_ml_catalog().items() if k != "public"}
        present = session.json("GET", f"{base}/schema", idempotent=True)["schemas"]
        missing = {k: v for k, v in schemas.items() if k not in present}
        if missing:
            session.call("POST", f"{base}/schema", idempotent=False, expect=(200, 201), json={"schemas": missing})
        catalog = CatalogClient(session, catalog_id)
        for (schema, table), rows in seed_rows().items():
            catalog.insert(schema, table, rows, defaults=("ID", "URI"), on_conflict_skip=True)
        for acl in WRITE_ACLS:
            session.call("PUT", f"{base}/acl/{acl}", idempotent=True, expect=(200, 204), json=list(grant))
        for acl in ("select", "enumerate"):
            session.call("PUT", f"{base}/acl/{acl}", idempotent=True, expect=(200, 204), json=["*"])
        for table in CatalogModel.from_json(session.json("GET", f"{base}/schema", idempotent=True)).asset_tables():
            _namespace(admin, f"/hatrac/{table.name}", grant)
        _namespace(admin, "/hatrac/metadata", grant)
    return catalog_id


def _namespace(admin: Remote, path: str, grant: list[str]) -> None:
    try:
        admin.session.call("PUT", path, idempotent=False, expect=(201,),
                           headers={"Content-Type": "application/x-hatrac-namespace"})
    except errors.Conflict:
        pass  # made by an earlier run
    admin.session.call("PUT", f"{path};acl/create", idempotent=True, expect=(200, 204), json=list(grant))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m satchel.testing.provision", description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="the server, e.g. http://127.0.0.1")
    ap.add_argument("--cookie", required=True, help="an administrator's webauthn cookie value")
    ap.add_argument("--grant", action="append", default=[], metavar="CLIENT_ID",
                    help="a client id given write rights (repeatable), e.g. test2")
    ap.add_argument("--catalog", help="complete this existing catalog instead of creating one")
    args = ap.parse_args(argv)
    value = args.cookie if args.cookie.startswith("webauthn=") else f"webauthn={args.cookie}"
    print(provision(args.url, Credential.cookie(value), grant=args.grant, catalog_id=args.catalog))
    return 0


if __name__ == "__main__":
    sys.exit(main())
