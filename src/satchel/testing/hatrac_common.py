"""Helpers shared by the emulated Hatrac's objects and upload jobs."""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from satchel.testing.httpd import HTTPError

DISPOSITION = re.compile(r"^filename[*]=UTF-8''[-_.~A-Za-z0-9%]+$")
#: the filesystem backend keeps a version as the file ``<root><name after /hatrac>:<version>``
STORAGE_ROOT = "/var/www/hatrac"
NAME_MAX = 255  # bytes in one file name component (Linux)


def new_id() -> str:
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=")


def check_storable(path: str, version: str) -> None:
    """Hatrac's filesystem backend fails (500) on a version whose file name has a component over NAME_MAX.

    It fails only when it writes the version: the object's name was made first and stays, without content.
    """
    stored = f"{STORAGE_ROOT}{path[len('/hatrac'):]}:{version}"
    if any(len(part.encode()) > NAME_MAX for part in stored.split("/")):
        raise HTTPError(500, f"[Errno 36] File name too long: '{stored}'", {"Connection": "close"})


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
