"""Read sets: intervals, merging, membership, and agreement with brute force."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import InvalidQueryError
from engine.read_set import Interval, ReadSet, ReadSetBuilder, SearchKey, SearchRead

# A tiny alphabet, so random keys collide, touch and nest often; 0x00 and 0xff
# are the interesting bytes (successors and the top of a byte).
keys = st.lists(st.sampled_from([0, 1, 2, 0xFF]), max_size=4).map(bytes)
index_ids = st.sampled_from(["1:by_id", "1:by_channel", "2:by_id"])


@st.composite
def raw_reads(draw: st.DrawFn) -> tuple[str, bytes, bytes | None]:
    index_id = draw(index_ids)
    lo = draw(keys)
    kind = draw(st.sampled_from(["point", "range", "unbounded", "empty"]))
    if kind == "point":
        return index_id, lo, lo + b"\x00"
    if kind == "unbounded":
        return index_id, lo, None
    if kind == "empty":
        return index_id, lo, lo
    hi = draw(keys)
    return (index_id, lo, hi) if lo <= hi else (index_id, hi, lo)


def build(reads: list[tuple[str, bytes, bytes | None]]) -> ReadSet:
    builder = ReadSetBuilder()
    for index_id, lo, hi in reads:
        builder.add(index_id, lo, hi)
    return builder.build()


def brute_contains(reads: list[tuple[str, bytes, bytes | None]], index_id: str, key: bytes) -> bool:
    return any(i == index_id and lo <= key and (hi is None or key < hi) for i, lo, hi in reads)


def probes(reads: list[tuple[str, bytes, bytes | None]], extra: list[bytes]) -> list[bytes]:
    """Keys at, just after and just before every bound: where off-by-ones live."""
    out = list(extra) + [b""]
    for _, lo, hi in reads:
        for k in (lo, hi):
            if k is not None:
                out += [k, k + b"\x00", k[:-1]]
    return out


# -- Interval -------------------------------------------------------------------


def test_point_holds_exactly_its_key() -> None:
    point = Interval.point(b"ab")
    assert point.is_point
    assert point.contains(b"ab")
    assert not point.contains(b"ab\x00")
    assert not point.contains(b"ab\x01")
    assert not point.contains(b"a")
    assert not point.contains(b"aa\xff")


def test_unbounded_interval_holds_everything_above_lo() -> None:
    everything = Interval(b"", None)
    assert everything.contains(b"") and everything.contains(b"\xff" * 50)
    tail = Interval(b"m", None)
    assert tail.contains(b"m") and tail.contains(b"z") and not tail.contains(b"l\xff")
    assert not tail.is_point


def test_half_open() -> None:
    interval = Interval(b"b", b"d")
    assert interval.contains(b"b") and interval.contains(b"c\xff")
    assert not interval.contains(b"d") and not interval.contains(b"a")
    assert not interval.is_point


@pytest.mark.parametrize(
    ("lo", "hi", "message"),
    [
        (b"b", b"a", "inverted"),
        ("a", None, "lower bound must be bytes"),
        (bytearray(b"a"), None, "lower bound must be bytes"),
        (b"a", "b", "upper bound must be bytes or None"),
        (None, b"b", "lower bound must be bytes"),
    ],
)
def test_bad_interval_is_a_clear_error(lo: object, hi: object, message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message) as caught:
        Interval(lo, hi)  # type: ignore[arg-type]
    assert caught.value.code == "InvalidQuery"


def test_bad_point_key() -> None:
    with pytest.raises(InvalidQueryError, match="key must be bytes"):
        Interval.point("k")  # type: ignore[arg-type]


# -- merging -------------------------------------------------------------------


def intervals_of(read_set: ReadSet, index_id: str) -> list[tuple[bytes, bytes | None]]:
    return [(i.lo, i.hi) for i in read_set.intervals(index_id)]


@pytest.mark.parametrize(
    ("reads", "merged"),
    [
        ([(b"a", b"c"), (b"b", b"d")], [(b"a", b"d")]),  # overlapping
        ([(b"a", b"b"), (b"b", b"c")], [(b"a", b"c")]),  # touching
        ([(b"a", b"z"), (b"c", b"d")], [(b"a", b"z")]),  # nested
        ([(b"a", b"b"), (b"a", b"b"), (b"a", b"b")], [(b"a", b"b")]),  # duplicates
        ([(b"x", b"y"), (b"a", b"b")], [(b"a", b"b"), (b"x", b"y")]),  # sorted
        ([(b"c", None), (b"a", b"b"), (b"d", b"e")], [(b"a", b"b"), (b"c", None)]),
        ([(b"a", b"c"), (b"a", None), (b"a", b"b")], [(b"a", None)]),  # same lo
        ([(b"a", b"a"), (b"b", b"b")], []),  # empty intervals vanish
        ([(b"", b"a"), (b"a", b"b")], [(b"", b"b")]),  # bottom of the index
        ([(b"k", b"k\x00"), (b"k\x00", b"k\x00\x00")], [(b"k", b"k\x00\x00")]),  # points
        (
            [(b"k", b"k\x00"), (b"k\x01", b"k\x01\x00")],
            [(b"k", b"k\x00"), (b"k\x01", b"k\x01\x00")],
        ),
    ],
)
def test_builder_merges(reads: list[tuple[bytes, bytes | None]], merged: list) -> None:
    builder = ReadSetBuilder()
    for lo, hi in reads:
        builder.add("t:by_x", lo, hi)
    assert len(builder) == len(reads)
    read_set = builder.build()
    assert intervals_of(read_set, "t:by_x") == merged
    assert read_set.interval_count() == len(merged)
    assert read_set.index_ids() == (("t:by_x",) if merged else ())


def test_indexes_are_kept_apart() -> None:
    builder = ReadSetBuilder()
    builder.add_point("1:by_id", b"k")
    builder.add("2:by_id", b"a", b"z")
    read_set = builder.build()
    assert read_set.contains("1:by_id", b"k") and not read_set.contains("2:by_id", b"zz")
    assert read_set.contains("2:by_id", b"k") and not read_set.contains("1:by_id", b"a")
    assert not read_set.contains("3:by_id", b"k")
    assert list(read_set) == [
        ("1:by_id", Interval.point(b"k")),
        ("2:by_id", Interval(b"a", b"z")),
    ]


def test_empty_read_set() -> None:
    empty = ReadSet.empty()
    assert not empty and empty.interval_count() == 0 and list(empty) == []
    assert not empty.intersects([("1:by_id", b"")])
    assert ReadSetBuilder().build() == empty
    assert empty.union(empty) == empty


def test_first_conflict_names_the_written_key() -> None:
    read_set = ReadSet.of([("1:by_channel", Interval(b"c", b"d"))])
    written = [("1:by_id", b"c"), ("1:by_channel", b"b"), ("1:by_channel", b"c1")]
    assert read_set.first_conflict(written) == ("1:by_channel", b"c1")
    assert read_set.intersects(iter(written))
    assert read_set.first_conflict(written[:2]) is None
    assert not read_set.intersects([])


def test_read_sets_are_values() -> None:
    a = ReadSet.of([("i", Interval(b"a", b"c")), ("i", Interval(b"b", b"d"))])
    b = ReadSet.of([("i", Interval(b"a", b"d"))])
    assert a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1
    with pytest.raises(AttributeError):
        a.indexes = ()  # type: ignore[misc]


@pytest.mark.parametrize(
    "indexes",
    [
        (("i", (Interval(b"b", b"c"), Interval(b"a", b"b"))),),  # unsorted
        (("i", (Interval(b"a", b"b"), Interval(b"b", b"c"))),),  # touching, not merged
        (("i", (Interval(b"a", None), Interval(b"b", b"c"))),),  # after unbounded
        (("i", (Interval(b"a", b"a"),)),),  # empty interval
        (("i", ()),),  # index without intervals
        (("j", (Interval(b"a", b"b"),)), ("i", (Interval(b"a", b"b"),))),  # ids unsorted
        (("", (Interval(b"a", b"b"),)),),  # empty index id
        (("i", ((b"a", b"b"),)),),  # not an Interval
    ],
)
def test_constructor_rejects_unnormalized_shapes(indexes: tuple) -> None:
    with pytest.raises(InvalidQueryError):
        ReadSet(indexes)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: b.add("", b"a", b"b"), "index id must be a non-empty string"),
        (lambda b: b.add(7, b"a", b"b"), "index id must be a non-empty string"),
        (lambda b: b.add("i", b"b", b"a"), "inverted"),
        (lambda b: b.add("i", "a", None), "lower bound must be bytes"),
        (lambda b: b.add("i", b"a", 3), "upper bound"),
        (lambda b: b.add_point("i", "k"), "key must be bytes"),
        (lambda b: b.add_point(None, b"k"), "index id"),
    ],
)
def test_builder_rejects_bad_reads(call, message: str) -> None:
    builder = ReadSetBuilder()
    with pytest.raises(InvalidQueryError, match=message):
        call(builder)
    assert len(builder) == 0 and builder.build() == ReadSet.empty()


def test_of_rejects_non_intervals() -> None:
    with pytest.raises(InvalidQueryError, match="expected an Interval"):
        ReadSet.of([("i", (b"a", b"b"))])  # type: ignore[list-item]


# -- properties ----------------------------------------------------------------


@given(st.lists(raw_reads(), max_size=12), st.lists(keys, max_size=6))
def test_contains_agrees_with_brute_force(reads: list, extra: list[bytes]) -> None:
    read_set = build(reads)
    for index_id in ("1:by_id", "1:by_channel", "2:by_id"):
        for key in probes(reads, extra):
            assert read_set.contains(index_id, key) == brute_contains(reads, index_id, key)


@given(st.lists(raw_reads(), max_size=12))
def test_build_is_normalized(reads: list) -> None:
    read_set = build(reads)
    assert ReadSet(read_set.indexes) == read_set  # the constructor's shape check passes
    for _, intervals in read_set.indexes:
        for prev, cur in zip(intervals, intervals[1:], strict=False):
            assert prev.hi is not None and prev.hi < cur.lo


@given(st.lists(raw_reads(), max_size=10), st.lists(st.tuples(index_ids, keys), max_size=6))
def test_intersects_agrees_with_brute_force(reads: list, written: list) -> None:
    read_set = build(reads)
    expected = [w for w in written if brute_contains(reads, *w)]
    assert read_set.intersects(written) == bool(expected)
    assert read_set.first_conflict(written) == (expected[0] if expected else None)


@given(st.lists(raw_reads(), max_size=8), st.lists(raw_reads(), max_size=8))
def test_union_is_the_read_set_of_both(a: list, b: list) -> None:
    union = build(a).union(build(b))
    assert union == build(a + b)
    assert union == build(b).union(build(a))


@given(st.lists(raw_reads(), max_size=10))
def test_of_round_trips_iteration(reads: list) -> None:
    read_set = build(reads)
    assert ReadSet.of(list(read_set)) == read_set
    assert ReadSet.of(reversed(list(read_set))) == read_set


def test_a_search_key_that_touches_nothing_does_not_hide_a_later_conflict() -> None:
    builder = ReadSetBuilder()
    builder.add("m:by_channel", b"c1", b"c2")
    builder.add_search(SearchRead("m:search_body", ("quick",), None, ()))
    reads = builder.build()
    untouched = SearchKey("m:search_body", frozenset({"slow"}), ())
    touching = SearchKey("m:search_body", frozenset({"quick"}), ())
    # One commit's writes: its search keys may come before its index keys.
    assert reads.first_conflict([untouched, ("m:by_channel", b"c1:x")]) == (
        "m:by_channel",
        b"c1:x",
    )
    assert reads.intersects([untouched, untouched, ("m:by_channel", b"c1")])
    assert reads.first_conflict([untouched, touching]) == ("m:search_body", b"")
    assert not reads.intersects([untouched, ("m:by_channel", b"c2")])
