"""Credentials: deriva-py's file, environment variables, and secrets that never leak."""

from __future__ import annotations

import json
import logging

import pytest

from satchel import errors
from satchel.remote import Credential, Remote, RetryPolicy, load_credential


def test_credential_file_format(tmp_path):
    f = tmp_path / "credential.json"
    f.write_text(json.dumps({
        "example.org": {"cookie": "webauthn=abc"},
        "other.org": {"bearer-token": "tok", "cookie": "webauthn=zzz"},
        "local:8080": {"bearer-token": "porty"},
    }))
    c = load_credential("example.org", env={}, path=f)
    assert c.kind == "cookie" and c.secret == "abc" and c.headers() == {"Cookie": "webauthn=abc"}
    assert load_credential("other.org", env={}, path=f).headers() == {"Authorization": "Bearer tok"}
    assert load_credential("local:8080", env={}, path=f).secret == "porty"
    assert load_credential("example.org:443", env={}, path=f).secret == "abc"
    assert load_credential("nowhere.org", env={}, path=f) is None
    assert load_credential("example.org", env={}, path=tmp_path / "missing.json") is None
    (tmp_path / "broken.json").write_text("{not json")
    assert load_credential("example.org", env={}, path=tmp_path / "broken.json") is None


def test_environment_wins(tmp_path):
    assert load_credential("h", env={"SATCHEL_TOKEN": "t"}).headers() == {"Authorization": "Bearer t"}
    assert load_credential("h", env={"SATCHEL_COOKIE": "webauthn=c"}).secret == "c"
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"h": {"bearer-token": "from-file"}}))
    assert load_credential("h", env={"DERIVA_CREDENTIAL_FILE": str(f)}).secret == "from-file"


def test_secret_not_in_repr_or_str():
    c = Credential.bearer("SECRET-123", "somewhere")
    assert "SECRET-123" not in repr(c) and "SECRET-123" not in str(c)


def test_secrets_never_in_logs_reprs_or_errors(deriva_server, caplog):
    secret = deriva_server.token
    caplog.set_level(logging.DEBUG)
    fast = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.01)
    with Remote(deriva_server.url, credential=Credential.bearer(secret), retry=fast) as r:
        texts = [repr(r), repr(r.session), repr(r.catalog), repr(r.hatrac), repr(r.session.client.auth)]
        with pytest.raises(errors.RemoteError) as info:
            r.catalog.get("nope", "Nope")
        texts.append(str(info.value))
        r.catalog.insert("test-schema", "Image", [{"URL": "/u", "Length": 1, "MD5": "m"}])
    with Remote(deriva_server.url, credential=Credential.cookie("webauthn=" + secret), retry=fast) as r:
        assert r.whoami()["client"]["id"] == "writer"
        texts.append(repr(r))
    with Remote("http://127.0.0.1:9", credential=Credential.bearer(secret), retry=fast) as r:
        with pytest.raises(errors.TransportError) as info:
            r.catalog.info()
        texts.append(str(info.value))
        texts.append(repr(info.value.__context__))
    texts += [rec.getMessage() for rec in caplog.records]
    assert texts and not [t for t in texts if secret in t]


def test_anonymous_write_says_why(deriva_server):
    with Remote(deriva_server.url, credential=None, retry=RetryPolicy.none()) as r:
        assert r.whoami() is None
        with pytest.raises(errors.AuthenticationError, match="check the token or cookie"):
            r.catalog.insert("test-schema", "Image", [{"URL": "/u", "Length": 1, "MD5": "m"}])


def test_tls_verification_is_on_by_default():
    with Remote("https://example.org", credential=None) as r:
        ctx = r.session.client._transport._pool._ssl_context
        import ssl

        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
