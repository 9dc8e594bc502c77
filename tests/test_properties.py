"""Property tests of satchel's records and pure functions.

Digests and the one-pass hasher, execution configurations, RIDs, Hatrac object
names, catalog file names made safe, and the cache's ingest/export round trip.
The stateful test of the whole API is in ``test_stateful.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import re
from pathlib import Path
from unittest import mock
from urllib.parse import quote, unquote

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satchel import rid
from satchel.cache import objects as cache_objects
from satchel.cache.digest import Digest, Hasher, digest_bytes
from satchel.cache.objects import ObjectCache
from satchel.api.config import AssetSpec, DatasetSpec, ExecutionConfiguration, LocalFile, Workflow
from satchel.mlschema import MAX_LEAF, hatrac_url
from satchel.api.placement import safe_filename

HEX = "0123456789abcdef"
hex_strings = lambda n: st.text(HEX, min_size=n, max_size=n)  # noqa: E731

# --- digests and the hasher ---------------------------------------------------------------

digests = st.builds(Digest, blake3=hex_strings(64), md5=hex_strings(32), size=st.integers(0, 2**63 - 1))


@given(digests)
def test_digest_round_trips_through_its_fields(d):
    fields = dataclasses.astuple(d)
    assert Digest(*fields) == d
    assert hash(Digest(*fields)) == hash(d)
    assert Digest(**json.loads(json.dumps(dataclasses.asdict(d)))) == d
    assert dataclasses.replace(d) == d
    assert d.short == d.blake3[:12]


@given(digests, st.sampled_from(["blake3", "md5"]), st.integers(0, 70).filter(lambda n: n not in (32, 64)))
def test_digest_rejects_hashes_of_the_wrong_length(d, name, length):
    with pytest.raises(ValueError, match="malformed digest"):
        dataclasses.replace(d, **{name: "0" * length})


@given(digests, st.integers(max_value=-1))
def test_digest_rejects_negative_sizes(d, size):
    with pytest.raises(ValueError, match="malformed digest"):
        dataclasses.replace(d, size=size)


@st.composite
def chunked_bytes(draw):
    """(data, chunks): some bytes and one way of cutting them into consecutive pieces."""
    data = draw(st.binary(max_size=4096))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return data, [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(chunked_bytes(), st.booleans())
def test_hasher_equals_hashlib_and_blake3_for_any_chunking(data_chunks, as_memoryview):
    data, chunks = data_chunks
    h = Hasher()
    for c in chunks:
        h.update(memoryview(c) if as_memoryview else c)
    d = h.digest()
    assert d == Digest(blake3.blake3(data).hexdigest(), hashlib.md5(data).hexdigest(), len(data))
    assert d == digest_bytes(data)
    assert h.size == len(data)


# --- execution configurations -----------------------------------------------------------------

names = st.text(min_size=1, max_size=20)
rids = st.text(rid.ERMREST_ALPHABET + "-", min_size=1, max_size=12)

workflows = st.builds(
    Workflow,
    name=names,
    workflow_type=st.one_of(names, st.lists(names, max_size=3)),
    url=st.none() | st.text(max_size=30),
    version=st.none() | st.text(max_size=8),
    description=st.text(max_size=30),
    checksum=st.none() | hex_strings(40),
    rid=st.none() | rids,
    is_notebook=st.booleans(),
)
asset_specs = st.builds(AssetSpec, rid=rids, cache=st.booleans())
dataset_specs = st.builds(
    DatasetSpec, rid=rids, version=st.none() | st.text("0123456789.", min_size=1, max_size=8),
    materialize=st.booleans(), description=st.text(max_size=20),
)


@st.composite
def asset_inputs(draw):
    """An AssetSpec and one of the forms a user may write it in (string, dict, or itself)."""
    spec = draw(asset_specs)
    forms = [spec, {"rid": spec.rid, "cache": spec.cache}]
    if not spec.cache:
        forms += [spec.rid, {"rid": spec.rid}]
    return spec, draw(st.sampled_from(forms))


@st.composite
def dataset_inputs(draw):
    spec = draw(dataset_specs)
    forms = [spec, dataclasses.asdict(spec), {**dataclasses.asdict(spec), "exclude_tables": ["X"]}]
    if spec.materialize and not spec.description and "@" not in spec.rid:
        forms.append(f"{spec.rid}@{spec.version}" if spec.version else spec.rid)
    return spec, draw(st.sampled_from(forms))


configurations = st.builds(
    lambda assets, datasets, workflow, description, argv, choices: (
        ExecutionConfiguration(
            assets=[form for _, form in assets], datasets=[form for _, form in datasets], workflow=workflow,
            description=description, argv=argv, config_choices=choices,
        ),
        [spec for spec, _ in assets],
        [spec for spec, _ in datasets],
    ),
    st.lists(asset_inputs(), max_size=4),
    st.lists(dataset_inputs(), max_size=3),
    st.none() | rids | workflows,
    st.text(max_size=40),
    st.lists(st.text(max_size=10), max_size=4),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)


@given(configurations)
def test_configuration_normalises_every_asset_and_dataset_form(cfg_specs):
    cfg, assets, datasets = cfg_specs
    assert cfg.assets == assets
    assert cfg.datasets == datasets


@given(configurations)
def test_configuration_json_is_serialisable_and_round_trips(cfg_specs):
    cfg, assets, datasets = cfg_specs
    doc = cfg.to_json()
    text = json.dumps(doc)  # plain JSON: no dataclasses, no Paths
    assert json.loads(text) == doc
    assert doc["assets"] == [{"rid": a.rid, "cache": a.cache} for a in assets]
    assert doc["datasets"] == [dataclasses.asdict(d) for d in datasets]
    assert doc["description"] == cfg.description
    assert doc["argv"] == cfg.argv and doc["config_choices"] == cfg.config_choices
    if isinstance(cfg.workflow, Workflow):
        assert Workflow(**doc["workflow"]) == cfg.workflow
    else:
        assert doc["workflow"] == cfg.workflow
    # what the journal stores builds the same configuration again
    again = ExecutionConfiguration(**json.loads(text))
    assert again == cfg
    assert again.to_json() == doc


def test_a_dict_with_a_path_is_a_local_file():
    assert ExecutionConfiguration(assets=[{"path": "notes.txt"}]).assets == [LocalFile("notes.txt")]


@given(st.one_of(st.integers(), st.none(), st.dictionaries(st.sampled_from(["url", "uri"]), st.text(max_size=5)),
                 st.just({"path": ""})))
def test_configuration_rejects_what_is_not_an_asset(bad):
    with pytest.raises(TypeError, match="input asset"):
        ExecutionConfiguration(assets=[bad], argv=[])


# --- RIDs -----------------------------------------------------------------------------------------

naturals = st.integers(min_value=0, max_value=2**80)


@given(naturals, naturals)
def test_b32_is_injective_and_order_preserving(a, b):
    ea, eb = rid.b32(a), rid.b32(b)
    assert (ea == eb) == (a == b)
    # unpadded: shorter means smaller; padded to one width, plain string order is number order
    assert ((len(ea), ea) < (len(eb), eb)) == (a < b)
    width = max(len(ea), len(eb))
    assert (ea.rjust(width, "0") < eb.rjust(width, "0")) == (a < b)


@given(naturals)
def test_b32_uses_the_ermrest_alphabet_and_decodes_back(n):
    text = rid.b32(n)
    assert set(text) <= set(rid.ERMREST_ALPHABET)
    assert not set(text) & set("ILOU")
    assert text == "0" or not text.startswith("0")
    value = 0
    for ch in text:
        value = value * 32 + rid.ERMREST_ALPHABET.index(ch)
    assert value == n


@given(st.integers(max_value=-1))
def test_b32_rejects_negative_numbers(n):
    with pytest.raises(ValueError):
        rid.b32(n)


store_ids = st.integers(0, 2**50 - 1).map(lambda n: rid.b32(n).rjust(10, "0"))
serials = st.integers(0, 2**63)


@given(store_ids, serials)
def test_provisional_rids_are_never_ermrest_rids(store_id, serial):
    r = rid.provisional_rid(store_id, serial)
    assert rid.is_provisional(r)
    assert not rid.looks_like_ermrest_rid(r)
    assert not rid.looks_like_ermrest_rid(r.upper()) and not rid.looks_like_ermrest_rid(r.lower())


@given(store_ids, serials, store_ids, serials)
def test_provisional_rids_are_unique_per_store_and_serial(s1, n1, s2, n2):
    assert (rid.provisional_rid(s1, n1) == rid.provisional_rid(s2, n2)) == ((s1, n1) == (s2, n2))


def test_new_store_ids_are_well_formed():
    for _ in range(200):
        sid = rid.new_store_id()
        assert len(sid) == 10 and rid.is_provisional(rid.provisional_rid(sid, 1))


@given(st.integers(0, 2**64).map(rid.b32))
def test_ermrest_rids_are_not_provisional(text):
    groups = [text[max(i - 4, 0) : i] for i in range(len(text), 0, -4)][::-1]
    ermrest = "-".join(groups)
    assert rid.looks_like_ermrest_rid(ermrest)
    assert not rid.is_provisional(ermrest)


# --- Hatrac object names ----------------------------------------------------------------------------

HATRAC_SAFE = re.compile(r"^[-._~A-Za-z0-9/%]*$")
PERCENT = re.compile(r"%(?![0-9A-F]{2})")


@given(st.text(min_size=1, max_size=30), hex_strings(32), st.text(min_size=1, max_size=300))
def test_hatrac_url_is_safe_and_names_the_object(table, md5, filename):
    url = hatrac_url(table, md5, filename)
    assert HATRAC_SAFE.match(url), url
    assert not PERCENT.search(url), "every % starts an upper-case %XX escape"
    segments = url.split("/")
    assert segments[:2] == ["", "hatrac"] and len(segments) == 4
    assert unquote(segments[2]) == table
    # Hatrac stores a version as "<last component>:<26-character id>", a file name of at most 255 bytes
    assert len(segments[3]) <= MAX_LEAF and len(segments[3]) + 27 <= 255
    whole = quote(f"{md5}.{filename}", safe="")
    if len(whole) <= MAX_LEAF:
        assert unquote(segments[3]) == f"{md5}.{filename}"
    else:
        assert unquote(segments[3]).startswith(f"{md5}.") and "~" in segments[3]


@given(st.text(min_size=1, max_size=30), hex_strings(32), st.text(min_size=1, max_size=300),
       st.text(min_size=1, max_size=300))
def test_hatrac_urls_differ_when_filenames_differ(table, md5, f1, f2):
    assert (hatrac_url(table, md5, f1) == hatrac_url(table, md5, f2)) == (f1 == f2)


def test_a_file_name_too_long_for_hatrac_keeps_its_start_and_extension():
    name = "ζ" * 120 + ".nii.gz"
    leaf = hatrac_url("Image", "0" * 32, name).rsplit("/", 1)[-1]
    assert len(leaf) <= MAX_LEAF and leaf.endswith(".gz") and unquote(leaf).startswith("0" * 32 + ".ζζζ")


# --- catalog file names made safe -------------------------------------------------------------------

any_text = st.text(st.characters(codec="utf-8"), max_size=40) | st.text(".\\/\0 \t\n", max_size=6)


@given(any_text, st.builds(rid.provisional_rid, store_ids, serials))
def test_safe_filename_can_always_be_joined_to_a_directory(name, fallback):
    out = safe_filename(name, fallback)
    assert out not in ("", ".", "..")
    assert not {"/", "\\", "\0"} & set(out)
    base = Path("/downloads/Image/1-ABCD")
    assert (base / out).parent == base
    assert safe_filename(out, fallback) == out  # idempotent: a safe name is left alone
    if name == out:
        assert name.strip() == name


# --- the cache round trip -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prop-cache")


_serial = itertools.count()


def _fresh(directory: Path, data: bytes) -> Path:
    p = directory / f"f{next(_serial)}"
    p.write_bytes(data)
    return p


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000), st.sampled_from([1, 64, cache_objects.SMALL]), st.booleans())
def test_cache_round_trip(cache_dir, data, small, through_a_symlink):
    """Ingest then export (copy and hardlink) gives the same bytes; identical bytes make no new object.

    ``small`` moves the threshold between the read-whole and the streaming ingest paths.
    """
    src_dir = cache_dir / "src"
    out_dir = cache_dir / "out"
    src_dir.mkdir(exist_ok=True)
    out_dir.mkdir(exist_ok=True)
    cache = ObjectCache(cache_dir / "cache", link_modes=("copy",))
    try:
        with mock.patch.object(cache_objects, "SMALL", small):
            captured = cache.ingest(_fresh(src_dir, data), durable=False)
            assert captured.digest == digest_bytes(data)
            assert cache.has(captured.digest)
            before = cache.disk_usage()
            again = cache.ingest(_fresh(src_dir, data), durable=False)  # other file, same bytes
            assert again.digest == captured.digest and not again.copied
            assert cache.disk_usage() == before
            # a batch with duplicates: results in order, still no new object
            batch = cache.ingest_many([_fresh(src_dir, data), _fresh(src_dir, data)])
            assert [c.digest for c in batch] == [captured.digest] * 2 and not any(c.copied for c in batch)
            assert cache.disk_usage() == before
        assert cache.ingest_stream(iter([data[:7], data[7:]])) == captured.digest
        assert cache.disk_usage() == before
        for mode in ("copy", "hardlink"):
            dest = out_dir / f"{mode}-{next(_serial)}"
            sentinel = None
            if through_a_symlink:
                sentinel = _fresh(out_dir, b"not the asset")
                dest.symlink_to(sentinel)
            used = cache.export(captured.digest, dest, link_modes=(mode,), durable=False)
            assert used == mode
            assert not dest.is_symlink() and dest.read_bytes() == data
            if sentinel is not None:
                assert sentinel.read_bytes() == b"not the asset", "export wrote through a symlink"
            assert cache.file_matches(dest, captured.digest)
            assert cache.read_bytes(captured.digest) == data
    finally:
        cache.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=8))
def test_cache_objects_match_their_digests(cache_dir, blobs):
    cache = ObjectCache(cache_dir / "cache2")
    try:
        src = cache_dir / "src2"
        src.mkdir(exist_ok=True)
        captured = cache.ingest_many([_fresh(src, b) for b in blobs])
        assert [c.digest for c in captured] == [digest_bytes(b) for b in blobs]
        assert cache.disk_usage()[0] >= len(set(blobs))
        for obj in cache.iter_objects():
            assert obj.parent.name + obj.name == blake3.blake3(obj.read_bytes()).hexdigest()
            assert not os.stat(obj).st_mode & 0o222, "cached objects are read-only"
        report = cache.verify()
        assert report.ok and report.checked == cache.disk_usage()[0]
    finally:
        cache.close()
