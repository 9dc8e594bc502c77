"""The emulated webauthn ``/authn/session`` and the request identity.

Clients are known by a session token, sent either as the ``webauthn`` cookie
or as ``Authorization: Bearer <token>``. An unknown token is anonymous.
The emulator keeps its users' long-lived sessions in the state database, so
tokens survive a restart.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

import sqlalchemy as sa

from satchel.testing import state as S
from satchel.testing import values as V
from satchel.testing.httpd import HTTPError, Request, Response

SESSION_LIFETIME = dt.timedelta(hours=24)
TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_token() -> str:
    """A fresh 24-character session token (about 143 bits), letters and digits only.

    Not ``token_urlsafe``: its alphabet has ``-`` and ``_``, and a token that
    begins with ``-`` reads as an option on every command line it is pasted
    into (``--token -Xy...``)."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(24))


def make_client(user_id: str, attributes: list[str] = ()) -> dict:
    ident = {"id": user_id, "display_name": user_id, "identities": [user_id]}
    return {
        "client": ident,
        "attributes": [{"id": a, "display_name": a} for a in attributes] + [ident],
    }


class Authn:
    def __init__(self, state: S.State, lock: threading.RLock):
        self.state = state
        self.lock = lock
        self._sessions: dict[str, dict] = {}
        with state.engine.connect() as conn:
            for rec in conn.execute(sa.select(S.sessions)):
                self._sessions[rec.token] = {
                    "doc": json.loads(rec.client), "since": rec.since, "expires": rec.expires,
                    "password": rec.password,
                }

    def ensure_user(self, user_id: str, attributes: list[str], *, token: str | None = None,
                    password: str | None = None, lifetime: dt.timedelta = dt.timedelta(days=3650)) -> str:
        """A long-lived session for ``user_id``; returns its token (stable across restarts)."""
        with self.lock:
            for tok, sess in self._sessions.items():
                if sess["doc"]["client"]["id"] == user_id and sess.get("password") is not None:
                    return tok
            return self._create(make_client(user_id, attributes), token=token, password=password or "",
                                lifetime=lifetime)

    def _create(self, doc: dict, *, token=None, password=None, lifetime=SESSION_LIFETIME) -> str:
        token = token or new_token()
        now = dt.datetime.now(dt.timezone.utc)
        sess = {"doc": doc, "since": V.render_timestamp_space(now),
                "expires": V.render_timestamp_space(now + lifetime), "password": password}
        with self.state.begin() as conn:
            conn.execute(sa.insert(S.sessions).values(
                token=token, client=json.dumps(doc), since=sess["since"], expires=sess["expires"],
                password=password))
        self._sessions[token] = sess
        return token

    # --- identity -----------------------------------------------------------------

    def token_of(self, req: Request) -> str | None:
        auth = req.header("Authorization") or ""
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        cookie_header = req.header("Cookie")
        if cookie_header:
            jar = SimpleCookie()
            try:
                jar.load(cookie_header)
            except Exception:
                return None
            if "webauthn" in jar:
                return jar["webauthn"].value
        return None

    def identify(self, req: Request) -> dict | None:
        """The client document (``{"id", "attributes"}``) of the request, or None."""
        token = self.token_of(req)
        sess = self._sessions.get(token) if token else None
        if sess is None or V.parse_timestamp(sess["expires"]) < dt.datetime.now(dt.timezone.utc):
            return None
        doc = sess["doc"]
        return {"id": doc["client"]["id"], "attributes": doc["attributes"]}

    # --- /authn/session -----------------------------------------------------------

    def _session_doc(self, token: str) -> dict:
        sess = self._sessions[token]
        expires = V.parse_timestamp(sess["expires"])
        remaining = int((expires - dt.datetime.now(dt.timezone.utc)).total_seconds())
        return dict(sess["doc"], since=sess["since"], expires=sess["expires"],
                    seconds_remaining=max(remaining, 0), vary_headers=["cookie"], tracking=None)

    def handle(self, req: Request) -> Response:
        if req.raw_path.rstrip("/") not in ("/authn/session",):
            raise HTTPError(404, "Resource not found.")
        with self.lock:
            token = self.token_of(req)
            known = token if token in self._sessions and req.client is not None else None
            if req.method == "GET":
                if not known:
                    raise HTTPError(404, "No existing login session found.")
                return Response.json(200, self._session_doc(known))
            if req.method == "PUT":
                if not known:
                    raise HTTPError(404, "No existing login session found.")
                return Response.json(200, self._session_doc(known))
            if req.method == "DELETE":
                if not known:
                    raise HTTPError(404, "No existing login session found.")
                if self._sessions[known].get("password") is None:  # login sessions end; user tokens stay
                    del self._sessions[known]
                    with self.state.begin() as conn:
                        conn.execute(sa.delete(S.sessions).where(S.sessions.c.token == known))
                return Response.json(200, {})
            if req.method == "POST":
                if known:
                    raise HTTPError(409, "Login request conflicts with current client authentication state.")
                form = parse_qs(req.body().decode("utf-8", "replace"))
                username = (form.get("username") or [""])[0]
                password = (form.get("password") or [""])[0]
                for sess in self._sessions.values():
                    if sess["doc"]["client"]["id"] == username and sess.get("password") \
                            and secrets.compare_digest(sess["password"], password):
                        new = self._create(json.loads(json.dumps(sess["doc"])))
                        return Response.json(200, self._session_doc(new),
                                             [("Set-Cookie", f"webauthn={new}; Path=/")])
                raise HTTPError(401, "Session establishment failed.")
            raise HTTPError(405, "Method not allowed.")
