from __future__ import annotations

import pytest

from satchel import errors
from satchel.remote import urls
from satchel.testing import apache


def test_quoting_reserved_characters():
    assert urls.eq("RMT", "2026-11-25T13:36:47.5+00:00") == "RMT=2026-11-25T13%3A36%3A47.5%2B00%3A00"
    assert urls.q("a/b;c,d=e?f@g&h(i)") == "a%2Fb%3Bc%2Cd%3De%3Ff%40g%26h%28i%29"
    assert urls.any_of("ID", ["a", "b:c"]) == "ID=any(a,b%3Ac)"
    assert urls.page_modifiers(["RMT", "RID"], ["2026-01-01 00:00", None]) == \
        "@sort(RMT,RID)@after(2026-01-01%2000%3A00,::null::)"


def test_split_any_keeps_every_path_within_the_limit():
    around = "/ermrest/catalog/1/attribute/deriva-ml:Execution_Asset//RID"
    values = [f"{n:X}-{n * 7:04X}" for n in range(20_000)]
    chunks = list(urls.split_any("RID", values, around=around))
    assert sum(chunks, []) == values
    lengths = [len(around) + len(urls.any_of("RID", c)) for c in chunks]
    assert max(lengths) <= urls.MAX_PATH
    assert min(lengths[:-1]) > urls.MAX_PATH - 20, "chunks are filled, not cut by a count"


def test_split_any_encodes_before_measuring():
    values = [f"/hatrac/Image/{n:032x}.image {n}.png" for n in range(500)]
    for chunk in urls.split_any("URL", values, around="/x/"):
        assert len("/x/" + urls.any_of("URL", chunk)) <= urls.MAX_PATH


def test_a_value_too_long_to_send_is_refused_not_sent():
    with pytest.raises(errors.RequestTooLong, match="does not fit in one request path") as caught:
        list(urls.split_any("Description", ["short", "x" * urls.MAX_PATH]))
    assert caught.value.limit == urls.MAX_PATH


def test_check_target_limits_the_path_and_the_whole_target():
    urls.check_target("GET", "/" + "a" * (urls.MAX_PATH - 1) + "?" + "q" * 100)
    with pytest.raises(errors.RequestTooLong, match="its path has 3001 characters"):
        urls.check_target("GET", "/" + "a" * urls.MAX_PATH)
    with pytest.raises(errors.RequestTooLong, match="its target has"):
        urls.check_target("POST", "/short?" + "q" * urls.MAX_TARGET)


def test_limits_stay_under_what_apache_was_measured_to_accept():
    # Apache 2.4 + mod_wsgi (satchel.testing.apache): 4,092 bytes for the script's path and the decoded
    # path info, 8,191 for the request line; a script path of up to 1,000 characters must still fit
    assert urls.MAX_PATH + 1000 < apache.MAX_SCRIPT_PATH
    assert len("DELETE ") + urls.MAX_TARGET + len(" HTTP/1.1") < apache.MAX_REQUEST_LINE
