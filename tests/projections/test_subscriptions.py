"""The subscription matcher: it must find exactly the subscriptions brute force finds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine.read_set import Interval, ReadSet, ReadSetBuilder, SearchKey, SearchRead
from projections.subscriptions import SubscriptionMatcher

keys = st.lists(st.sampled_from([0, 1, 2, 0xFF]), max_size=4).map(bytes)
index_ids = st.sampled_from(["1:by_id", "1:by_channel", "2:by_id"])


def reads(*pairs: tuple[str, bytes, bytes | None]) -> ReadSet:
    builder = ReadSetBuilder()
    for index_id, lo, hi in pairs:
        builder.add(index_id, lo, hi)
    return builder.build()


def point(index_id: str, key: bytes) -> ReadSet:
    return ReadSet.of([(index_id, Interval.point(key))])


# -- behaviour -------------------------------------------------------------------


def test_point_range_and_unbounded_reads_match() -> None:
    matcher = SubscriptionMatcher()
    matcher.add("get", point("m:by_id", b"doc1"))
    matcher.add("channel", reads(("m:by_channel", b"c1", b"c2")))
    matcher.add("tail", reads(("m:by_time", b"t5", None)))
    assert matcher.match([("m:by_id", b"doc1")]) == {"get"}
    assert matcher.match([("m:by_id", b"doc1\x00")]) == set()
    assert matcher.match([("m:by_channel", b"c1:x")]) == {"channel"}
    assert matcher.match([("m:by_channel", b"c2")]) == set()
    assert matcher.match([("m:by_time", b"t9"), ("m:by_time", b"t0")]) == {"tail"}
    assert matcher.match([("other:by_id", b"doc1")]) == set()
    assert matcher.match([]) == set()
    written = [("m:by_id", b"doc1"), ("m:by_channel", b"c1"), ("m:by_time", b"t6")]
    assert matcher.match(written) == {"get", "channel", "tail"}


def test_remove_and_replace() -> None:
    matcher = SubscriptionMatcher()
    matcher.add(1, reads(("i", b"a", b"m")))
    matcher.add(2, reads(("i", b"a", b"m")))
    assert matcher.match([("i", b"c")]) == {1, 2}
    matcher.remove(1)
    assert matcher.match([("i", b"c")]) == {2}
    matcher.replace(2, reads(("i", b"x", None)))
    assert matcher.match([("i", b"c")]) == set()
    assert matcher.match([("i", b"y")]) == {2}
    matcher.replace(3, point("i", b"c"))  # replace adds a subscription that is not live
    assert matcher.match([("i", b"c")]) == {3}
    assert len(matcher) == 2 and 3 in matcher and 1 not in matcher
    assert matcher.read_set(3) == point("i", b"c")


def test_readding_a_range_after_everyone_left() -> None:
    matcher = SubscriptionMatcher(pending_max=1)
    for round_ in range(5):
        for sub in range(4):
            matcher.add((round_, sub), reads(("i", b"a", b"c")))
        assert matcher.match([("i", b"b")]) == {(round_, s) for s in range(4)}
        for sub in range(4):
            matcher.remove((round_, sub))
        assert matcher.match([("i", b"b")]) == set()
    assert len(matcher) == 0


def test_many_subscribers_of_one_query_share_one_interval() -> None:
    matcher = SubscriptionMatcher()
    same = reads(("m:by_channel", b"c1", b"c2"), ("m:by_id", b"k", b"k\x00"))
    for sub in range(1000):
        matcher.add(sub, same)
    stats = matcher.statistics()
    assert stats["subscriptions"] == 1000
    assert stats["intervals"] == 2000
    assert stats["distinct_ranges"] == 1 and stats["point_keys"] == 1
    assert matcher.match([("m:by_channel", b"c1z")]) == set(range(1000))


def test_statistics_follow_adds_and_removes() -> None:
    matcher = SubscriptionMatcher(pending_max=2)
    for sub in range(50):
        matcher.add(sub, reads(("i", bytes([sub]), bytes([sub + 1, 0])), ("j", b"", None)))
    stats = matcher.statistics()
    assert stats["subscriptions"] == 50 and stats["intervals"] == 100
    assert stats["distinct_ranges"] == 51 and stats["rebuilds"] > 0
    for sub in range(50):
        matcher.remove(sub)
    stats = matcher.statistics()
    assert stats["subscriptions"] == 0 and stats["intervals"] == 0
    assert stats["distinct_ranges"] == 0 and stats["indexes"] == 0
    assert stats["rebuilds"] > 0  # history is kept for the dashboard


def test_churn_does_not_grow_memory() -> None:
    """Ranges emptied by removes are dropped once they outnumber the live ones."""
    matcher = SubscriptionMatcher(pending_max=4)
    for sub in range(20):
        matcher.add(("stays", sub), reads(("i", bytes([sub]), bytes([sub, 1]))))
    for sub in range(5000):
        lo = sub.to_bytes(4, "big")
        matcher.add(sub, reads(("i", lo, lo + b"\x05")))
        matcher.remove(sub)
        stats = matcher.statistics()
        assert stats["stored_ranges"] == stats["distinct_ranges"] + stats["dead_ranges"]
        assert stats["stored_ranges"] <= 2 * 20 + 4 + 1
    assert matcher.match([("i", bytes([3, 0]))]) == {("stays", 3)}


def test_empty_read_set_never_matches() -> None:
    matcher = SubscriptionMatcher()
    matcher.add("nothing", ReadSet.empty())
    assert matcher.match([("i", b"")]) == set() and len(matcher) == 1
    matcher.remove("nothing")
    assert len(matcher) == 0


def test_misuse_is_a_clear_error() -> None:
    matcher = SubscriptionMatcher()
    matcher.add(1, point("i", b"k"))
    with pytest.raises(ValueError, match="already exists; use replace"):
        matcher.add(1, point("i", b"j"))
    assert matcher.match([("i", b"j")]) == set()  # the failed add changed nothing
    with pytest.raises(KeyError):
        matcher.remove(2)
    with pytest.raises(TypeError, match="expected a ReadSet"):
        matcher.add(3, [("i", Interval.point(b"k"))])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a ReadSet"):
        matcher.replace(1, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pending_max"):
        SubscriptionMatcher(pending_max=0)
    assert matcher.match([("i", b"k")]) == {1}


# -- against brute force ---------------------------------------------------------


@st.composite
def read_sets(draw: st.DrawFn) -> ReadSet:
    builder = ReadSetBuilder()
    for _ in range(draw(st.integers(0, 4))):
        index_id, lo = draw(index_ids), draw(keys)
        kind = draw(st.sampled_from(["point", "range", "range", "unbounded"]))
        if kind == "point":
            builder.add_point(index_id, lo)
        elif kind == "unbounded":
            builder.add(index_id, lo, None)
        else:
            hi = draw(keys)
            builder.add(index_id, min(lo, hi), max(lo, hi))
    return builder.build()


# A few shared read sets make identical subscriptions (shared intervals) common.
SHARED = [
    reads(("1:by_channel", b"\x01", b"\x02")),
    reads(("1:by_channel", b"", None)),
    point("1:by_id", b"\x01"),
]
any_read_set = st.one_of(read_sets(), st.sampled_from(SHARED))
sub_ids = st.integers(0, 12)


class MatcherAgreesWithBruteForce(RuleBasedStateMachine):
    """Random adds, removes, replaces and matches; pending_max=1 forces many rebuilds."""

    def __init__(self) -> None:
        super().__init__()
        self.matcher = SubscriptionMatcher(pending_max=1)
        self.truth: dict[int, ReadSet] = {}

    @rule(sub=sub_ids, read_set=any_read_set)
    def add(self, sub: int, read_set: ReadSet) -> None:
        if sub in self.truth:
            with pytest.raises(ValueError):
                self.matcher.add(sub, read_set)
            return
        self.matcher.add(sub, read_set)
        self.truth[sub] = read_set

    @precondition(lambda self: self.truth)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        sub = data.draw(st.sampled_from(sorted(self.truth)))
        self.matcher.remove(sub)
        del self.truth[sub]

    @rule(sub=sub_ids, read_set=any_read_set)
    def replace(self, sub: int, read_set: ReadSet) -> None:
        self.matcher.replace(sub, read_set)
        self.truth[sub] = read_set

    @rule(written=st.lists(st.tuples(index_ids, keys), max_size=6))
    def match(self, written: list[tuple[str, bytes]]) -> None:
        expected = {s for s, r in self.truth.items() if r.intersects(written)}
        assert self.matcher.match(written) == expected

    @rule(data=st.data())
    def match_a_bound(self, data: st.DataObject) -> None:
        """Probe exactly at interval bounds, where off-by-ones live."""
        bounds = [
            (index_id, k)
            for r in self.truth.values()
            for index_id, interval in r
            for k in (interval.lo, interval.hi)
            if k is not None
        ]
        if not bounds:
            return
        written = [data.draw(st.sampled_from(bounds))]
        expected = {s for s, r in self.truth.items() if r.intersects(written)}
        assert self.matcher.match(written) == expected

    @invariant()
    def sizes_agree(self) -> None:
        stats = self.matcher.statistics()
        assert len(self.matcher) == len(self.truth) == stats["subscriptions"]
        assert stats["intervals"] == sum(r.interval_count() for r in self.truth.values())
        distinct = {
            (index_id, interval)
            for r in self.truth.values()
            for index_id, interval in r
            if not interval.is_point
        }
        assert stats["distinct_ranges"] == len(distinct)
        assert stats["stored_ranges"] == stats["distinct_ranges"] + stats["dead_ranges"]


MatcherAgreesWithBruteForce.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestMatcherAgreesWithBruteForce = MatcherAgreesWithBruteForce.TestCase


def test_large_random_workload_agrees_with_brute_force() -> None:
    """Many subscriptions and much churn, so levels merge and compact for real."""
    import random

    seed = 1729
    rng = random.Random(seed)

    def key() -> bytes:
        return bytes(rng.choice(b"\x00\x01\x02\x03\xff") for _ in range(rng.randint(0, 3)))

    def random_read_set() -> ReadSet:
        builder = ReadSetBuilder()
        for _ in range(rng.randint(1, 3)):
            index_id, lo = rng.choice(["a", "b"]), key()
            roll = rng.random()
            if roll < 0.3:
                builder.add_point(index_id, lo)
            elif roll < 0.4:
                builder.add(index_id, lo, None)
            else:
                hi = key()
                builder.add(index_id, min(lo, hi), max(lo, hi))
        return builder.build()

    matcher = SubscriptionMatcher(pending_max=4)
    truth: dict[int, ReadSet] = {}
    for step in range(6000):
        roll = rng.random()
        if roll < 0.45:
            sub = rng.randrange(400)
            read_set = random_read_set()
            matcher.replace(sub, read_set)
            truth[sub] = read_set
        elif roll < 0.65 and truth:
            sub = rng.choice(list(truth))
            matcher.remove(sub)
            del truth[sub]
        else:
            written = [(rng.choice("abc"), key()) for _ in range(rng.randint(1, 4))]
            expected = {s for s, r in truth.items() if r.intersects(written)}
            assert matcher.match(written) == expected, f"seed {seed}, step {step}"
    assert matcher.statistics()["rebuilds"] > 100


# -- text search subscriptions -------------------------------------------------------

search_tokens = st.sampled_from(["q", "qu", "quick", "quiet", "brown", "b", "fox", "a"])
search_filters = st.sampled_from([(), (("author", b"ada"),), (("author", b"bob"),)])


def searched(*searches: SearchRead) -> ReadSet:
    builder = ReadSetBuilder()
    for read in searches:
        builder.add_search(read)
    return builder.build()


@st.composite
def search_reads(draw: st.DrawFn) -> SearchRead:
    terms = tuple(sorted(set(draw(st.lists(search_tokens, max_size=3)))))
    prefix = draw(st.none() | search_tokens)
    index_id = draw(st.sampled_from(["n:search_body", "m:search_title"]))
    return SearchRead(index_id, terms, prefix, draw(search_filters))


@st.composite
def search_versions(draw: st.DrawFn) -> SearchKey:
    index_id = draw(st.sampled_from(["n:search_body", "m:search_title"]))
    tokens = frozenset(draw(st.lists(search_tokens, max_size=4)))
    return SearchKey(index_id, tokens, draw(search_filters))


def test_a_document_matching_two_searches_wakes_both() -> None:
    matcher = SubscriptionMatcher()
    matcher.add("quick", ReadSet(searches=(SearchRead("n:s", ("quick",), None, ()),)))
    matcher.add("fox", ReadSet(searches=(SearchRead("n:s", ("fox",), None, ()),)))
    matcher.add("q*", ReadSet(searches=(SearchRead("n:s", (), "q", ()),)))
    matcher.add("br*", ReadSet(searches=(SearchRead("n:s", (), "br", ()),)))
    written = SearchKey("n:s", frozenset({"quick", "brown", "fox"}), ())
    assert matcher.match([written]) == {"quick", "fox", "q*", "br*"}
    assert matcher.match([SearchKey("n:s", frozenset({"b"}), ())]) == set()


@settings(max_examples=300, deadline=None)
@given(
    subscriptions=st.lists(st.lists(search_reads(), min_size=1, max_size=2), max_size=8),
    written=st.lists(search_versions(), max_size=3),
)
def test_search_subscriptions_agree_with_brute_force(subscriptions, written) -> None:
    matcher = SubscriptionMatcher()
    for sub_id, searches in enumerate(subscriptions):
        matcher.add(sub_id, searched(*searches))
    expected = {
        sub_id
        for sub_id, searches in enumerate(subscriptions)
        if any(read.touched_by(version) for read in searches for version in written)
    }
    assert matcher.match(written) == expected
