"""Property: any text value survives insert, filter and @after paging through the URL encoding."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satchel.remote import Credential, Remote, RetryPolicy, urls
from satchel.testing import DerivaServer

texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40)


def test_any_text_round_trips_through_filters_and_page_keys(tmp_path):
    with DerivaServer(tmp_path / "emu") as server, \
            Remote(server.url, credential=Credential.bearer(server.token), retry=RetryPolicy.none()) as remote:
        counter = iter(range(10**6))

        @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(value=texts)
        def check(value):
            n = next(counter)
            (row,) = remote.catalog.insert("test-schema", "Image", [
                {"URL": f"/u/{n}", "Length": n, "MD5": "m", "Filename": value}])
            found = remote.catalog.get("test-schema", "Image", urls.eq("Filename", value), urls.eq("Length", n))
            assert [r["RID"] for r in found] == [row["RID"]]
            assert remote.catalog.lookup("test-schema", "Image", "Filename", [value], columns=("RID",))
            after = remote.catalog.get("test-schema", "Image", urls.eq("Length", n),
                                       sort=("Filename", "RID"), after=(value, row["RID"]))
            assert after == []

        check()
        assert not server.errors
