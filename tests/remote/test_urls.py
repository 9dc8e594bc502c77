from __future__ import annotations

from satchel.remote import urls


def test_quoting_reserved_characters():
    assert urls.eq("RMT", "2026-11-25T13:36:47.5+00:00") == "RMT=2026-11-25T13%3A36%3A47.5%2B00%3A00"
    assert urls.q("a/b;c,d=e?f@g&h(i)") == "a%2Fb%3Bc%2Cd%3De%3Ff%40g%26h%28i%29"
    assert urls.any_of("ID", ["a", "b:c"]) == "ID=any(a,b%3Ac)"
    assert urls.page_modifiers(["RMT", "RID"], ["2026-01-01 00:00", None]) == \
        "@sort(RMT,RID)@after(2026-01-01%2000%3A00,::null::)"


def test_split_any_stays_within_budget():
    values = [f"value-{i:05d}" for i in range(2000)]
    chunks = list(urls.split_any("URL", values, 1000))
    assert sum(chunks, []) == values
    assert all(len(urls.any_of("URL", c)) <= 1000 for c in chunks)
