from hypothesis import given, strategies as st

from satchel.testing import rid


def test_examples_from_the_protocol():
    assert rid.encode(0) == "0"
    assert rid.decode("MY-RID-1") + 1 == rid.decode("MY-R1D2")
    assert rid.encode(rid.decode("MY-RID-1") + 1) == "MY-R1D2"


def test_lenient_decoding():
    assert rid.decode("1tE") == rid.decode("1TE")
    assert rid.decode("1-0ABC") == rid.decode("10ABC")
    assert rid.decode("O0") == rid.decode("00")
    assert rid.canonical("bad_rid!") is None


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_round_trip_and_shape(n):
    text = rid.encode(n)
    assert rid.decode(text) == n
    assert rid.ALPHABET.index(text[-1]) % 2 == 0
    assert not text.startswith("-")
    groups = text.split("-")
    assert all(len(g) == 4 for g in groups[1:]) and 1 <= len(groups[0]) <= 4
