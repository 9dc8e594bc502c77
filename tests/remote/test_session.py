"""RemoteSession: injectable transport, bounded pool, per-attempt bodies and headers."""

from __future__ import annotations

import httpx
import pytest

from satchel import errors
from satchel.remote import Credential, RemoteSession, RetryPolicy


def test_transport_is_injectable_and_credentials_applied():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"client": {"id": "me"}})

    with RemoteSession("https://example.org", credential=Credential.bearer("t0k"),
                       transport=httpx.MockTransport(handler)) as s:
        assert s.whoami() == {"client": {"id": "me"}}
    assert seen[0].headers["Authorization"] == "Bearer t0k" and seen[0].url.path == "/authn/session"
    with RemoteSession("https://example.org", credential=Credential.cookie("webauthn=c00k"),
                       transport=httpx.MockTransport(handler)) as s:
        s.whoami()
    assert seen[1].headers["Cookie"] == "webauthn=c00k"


def test_each_attempt_gets_fresh_content_and_headers():
    bodies, attempts = [], iter(range(10))

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.read(), request.headers["X-Attempt"]))
        return httpx.Response(503 if len(bodies) < 3 else 201)

    fast = RetryPolicy(attempts=5, base_delay=0, max_delay=0, sleep=lambda s: None)
    with RemoteSession("http://h", credential=None, retry=fast, transport=httpx.MockTransport(handler)) as s:
        s.call("PUT", "/hatrac/x", idempotent=True, expect=(201,),
               content=lambda: iter([b"ab", b"cd"]), headers=lambda: {"X-Attempt": str(next(attempts)),
                                                                        "Content-Length": "4"})
    assert bodies == [(b"abcd", "0"), (b"abcd", "1"), (b"abcd", "2")]


def test_unexpected_status_and_non_json_are_remote_errors():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>not json</html>") if request.url.path == "/a" \
            else httpx.Response(409, text="Detail: nope")

    with RemoteSession("http://h", credential=None, retry=RetryPolicy.none(),
                       transport=httpx.MockTransport(handler)) as s:
        with pytest.raises(errors.ProtocolError, match="non-JSON"):
            s.json("GET", "/a", idempotent=True)
        with pytest.raises(errors.Conflict) as info:
            s.call("POST", "/b", idempotent=False)
        assert info.value.status == 409 and info.value.method == "POST" and info.value.url == "http://h/b"


def test_pool_is_bounded_and_urls_validated():
    with RemoteSession("https://example.org", credential=None, max_connections=3) as s:
        assert s.client._transport._pool._max_connections == 3
    with pytest.raises(ValueError):
        RemoteSession("ftp://example.org", credential=None)
