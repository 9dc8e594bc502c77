"""Helpers shared by the emulated Hatrac's objects and upload jobs."""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from satchel.testing.httpd import HTTPError

_DISPOSITION = re.compile(r"^filename[*]=UTF-8''[-_.~A-Za-z0-9%]+$")


def new_id() -> str:
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=")


def parse_hash(value: str | None, size: int, name: str) -> bytes | None:
    """A hex or base64 hash header value as bytes; 400 when malformed."""
    if value is None:
        return None
    value = value.strip()
    try:
        if len(value) == 2 * size:
            return bytes.fromhex(value)
        raw = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != size:
        raise HTTPError(400, f"Bad request. Detail: Invalid {name} {value!r}.")
    return raw


def b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()
