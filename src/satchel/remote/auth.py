"""Credentials the way DERIVA users already keep them.

Looked up, first match wins:

1. ``SATCHEL_TOKEN`` — a bearer token;
2. ``SATCHEL_COOKIE`` — the ``webauthn`` cookie, as ``webauthn=<value>`` or just the value;
3. deriva-py's credential file, ``~/.deriva/credential.json`` (or ``DERIVA_CREDENTIAL_FILE``):
   ``{"<host>": {"bearer-token": "…"}}`` or ``{"<host>": {"cookie": "webauthn=…"}}``, keyed by
   host name (``host:port`` is tried before ``host``); a bearer token wins over a cookie.

A :class:`Credential` never shows its secret: not in ``repr``, ``str``, logs
or error messages.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generator, Mapping

import httpx

TOKEN_ENV = "SATCHEL_TOKEN"
COOKIE_ENV = "SATCHEL_COOKIE"
CREDENTIAL_FILE_ENV = "DERIVA_CREDENTIAL_FILE"
DEFAULT_CREDENTIAL_FILE = Path("~/.deriva/credential.json")


@dataclass(frozen=True)
class Credential:
    """A bearer token or a webauthn cookie value, and where it came from."""

    kind: str  # "bearer" | "cookie"
    secret: str = field(repr=False)
    source: str = "explicit"

    def __post_init__(self):
        if self.kind not in ("bearer", "cookie"):
            raise ValueError(f"credential kind must be 'bearer' or 'cookie', not {self.kind!r}")
        if self.kind == "cookie" and self.secret.startswith("webauthn="):
            object.__setattr__(self, "secret", self.secret[len("webauthn="):])

    @classmethod
    def bearer(cls, token: str, source: str = "explicit") -> "Credential":
        return cls("bearer", token, source)

    @classmethod
    def cookie(cls, value: str, source: str = "explicit") -> "Credential":
        return cls("cookie", value, source)

    def __str__(self) -> str:
        return f"{self.kind} credential from {self.source}"

    def headers(self) -> dict[str, str]:
        if self.kind == "bearer":
            return {"Authorization": f"Bearer {self.secret}"}
        return {"Cookie": f"webauthn={self.secret}"}


class CredentialAuth(httpx.Auth):
    """httpx auth that adds the credential to every request."""

    def __init__(self, credential: Credential):
        self.credential = credential

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        for k, v in self.credential.headers().items():
            if k == "Cookie" and request.headers.get("Cookie"):
                request.headers["Cookie"] = request.headers["Cookie"] + "; " + v
            else:
                request.headers[k] = v
        yield request

    def __repr__(self) -> str:
        return f"CredentialAuth({self.credential!s})"


def credential_file(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(CREDENTIAL_FILE_ENV) or DEFAULT_CREDENTIAL_FILE).expanduser()


def load_credential(host: str, *, env: Mapping[str, str] | None = None,
                    path: str | Path | None = None) -> Credential | None:
    """The credential for ``host`` (``name`` or ``name:port``), or None if there is none."""
    env = os.environ if env is None else env
    if env.get(TOKEN_ENV):
        return Credential.bearer(env[TOKEN_ENV], f"${TOKEN_ENV}")
    if env.get(COOKIE_ENV):
        return Credential.cookie(env[COOKIE_ENV], f"${COOKIE_ENV}")
    file = Path(path).expanduser() if path is not None else credential_file(env)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # an unreadable file is the same as none; never echo its content
    if not isinstance(doc, dict):
        return None
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    for key in (host, host.lower(), bare, bare.lower()):
        entry = doc.get(key)
        if isinstance(entry, dict):
            if entry.get("bearer-token"):
                return Credential.bearer(entry["bearer-token"], f"{file} [{key}]")
            if entry.get("cookie"):
                return Credential.cookie(entry["cookie"], f"{file} [{key}]")
    return None
