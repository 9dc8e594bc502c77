"""ERMrest's RID encoding (``urlb32``), as the emulator writes and reads it.

Clients treat RIDs as opaque; only the emulator needs this. An integer ``n``
is written as the 65-bit value ``2n`` in 13 base-32 symbols grouped
``X-XXXX-XXXX-XXXX``, with leading ``0`` and ``-`` stripped, so the last
symbol is always even. Decoding is lenient (case, ``-``, ``O``/``I``/``L``).
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUES = {c: i for i, c in enumerate(ALPHABET)}
_VALUES.update({"O": 0, "I": 1, "L": 1})


def encode(n: int) -> str:
    """Encode a non-negative integer below 2**64 as an ERMrest RID."""
    if not 0 <= n < 2**64:
        raise ValueError(f"RID value out of range: {n}")
    value = n << 1
    symbols = []
    for _ in range(13):
        symbols.append(ALPHABET[value & 31])
        value >>= 5
    text = "".join(reversed(symbols))
    grouped = f"{text[0]}-{text[1:5]}-{text[5:9]}-{text[9:13]}"
    return grouped.lstrip("0-") or "0"


def decode(rid: str) -> int:
    """Decode a RID leniently; raise ValueError naming the bad character."""
    symbols = rid.upper().replace("-", "")
    if not symbols or len(symbols) > 13:
        raise ValueError(f"Invalid RID length: {rid!r}")
    value = 0
    for char in symbols:
        if char not in _VALUES:
            raise ValueError(f"Invalid character: {char!r}")
        value = (value << 5) | _VALUES[char]
    return value >> 1


def canonical(rid: str) -> str | None:
    """The server's spelling of ``rid``, or None when it does not decode."""
    try:
        return encode(decode(rid))
    except ValueError:
        return None
