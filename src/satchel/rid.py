"""RIDs: the catalog's row identifiers, and satchel's provisional ones.

ERMrest RIDs are base32 (alphabet ``0-9A-Z`` without I, L, O, U) in groups of
four joined by ``-``, e.g. ``1-0ABC``; even lenient decoding accepts only
those symbols, ``-`` and lower case. A row created offline with no leased
RID to hand gets a *provisional* RID, ``L_<store id>_<serial>``: the ``_``
makes it impossible as an ERMrest RID, the store id (random, 50 bits) keeps
two machines apart, and the serial is unique within the store. Once the row
reaches the catalog, the provisional RID becomes an alias of the server's and
keeps resolving forever.
"""

from __future__ import annotations

import re
import secrets

ERMREST_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PROVISIONAL_PREFIX = "L_"

_ERMREST_RID = re.compile(r"^[A-Z0-9]{1,4}(-[A-Z0-9]{4})*$")
_PROVISIONAL = re.compile(r"^L_[0-9A-Z]{10}_[0-9A-Z]+$")


def b32(n: int) -> str:
    """``n`` in ERMrest's base32 alphabet (no grouping)."""
    if n < 0:
        raise ValueError("negative")
    out = []
    while True:
        n, r = divmod(n, 32)
        out.append(ERMREST_ALPHABET[r])
        if n == 0:
            return "".join(reversed(out))


def new_store_id() -> str:
    return b32(secrets.randbits(50)).rjust(10, "0")


def provisional_rid(store_id: str, serial: int) -> str:
    return f"{PROVISIONAL_PREFIX}{store_id}_{b32(serial)}"


def is_provisional(rid: str) -> bool:
    return bool(_PROVISIONAL.match(rid))


def looks_like_ermrest_rid(rid: str) -> bool:
    return bool(_ERMREST_RID.match(rid))
