"""The tantivy projection: tokens, idempotent apply, checkpoints, and scores that agree."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from engine.key_encoding import encode_value
from engine.read_set import SearchRead
from engine.schema import SearchIndexDef
from projections.text_search import (
    TOKEN_BYTES_MAX,
    Bm25Scorer,
    TextIndex,
    bm25,
    filter_token,
    idf,
    search_keys_of,
    tokenize,
)

DEF = SearchIndexDef("t", "s", "body", ("channel",))
PREFIX = (10001).to_bytes(4, "big")


def key(i: int) -> bytes:
    return PREFIX + i.to_bytes(16, "big")


def test_tokens_are_lowercase_alphanumeric_runs():
    assert tokenize("Hello, World! it's 2024_x") == ["hello", "world", "it", "s", "2024", "x"]
    assert tokenize("Çava ÉTÉ") == ["çava", "été"]
    assert tokenize("a" * TOKEN_BYTES_MAX + " " + "b" * (TOKEN_BYTES_MAX + 1)) == [
        "a" * TOKEN_BYTES_MAX
    ]


@given(st.text(max_size=200))
def test_tokens_are_clean_and_bounded(text):
    for token in tokenize(text):
        assert token and token == token.lower()
        assert all(ch.isalnum() for ch in token)
        assert len(token.encode()) <= TOKEN_BYTES_MAX


TERMS = st.sampled_from(["apple", "app", "band", "ban", "cherry", "été"])


@given(
    weights=st.lists(st.tuples(TERMS, st.floats(0.01, 20.0)), max_size=8),
    tokens=st.lists(TERMS, max_size=30),
    avg_length=st.sampled_from([0.0, 1.0, 3.5, 12.0]),
)
def test_the_scorer_sums_exactly_what_bm25_sums(weights, tokens, avg_length):
    # the same float, bit for bit: ties between documents are decided after the score
    expected = bm25(weights, Counter(tokens), len(tokens), avg_length)
    found = Bm25Scorer(weights, avg_length).score(tokens)
    matches = {t for t, _ in weights} & set(tokens)
    assert found == (expected if matches else None)


def test_frequencies_leave_deleted_documents_out_until_tantivy_drops_them(tmp_path):
    index = TextIndex(str(tmp_path / "t.s"), DEF)
    for i, body in enumerate(["apple band", "apple", "banana"]):
        index.stage(key(i), None, {"body": body, "channel": "a"})
    index.commit(1)
    view = index.view()
    assert not view.holds_deleted
    assert view.doc_freqs("apple")[0] == 2
    assert view.expansions("ban") == {"band": (1, 1), "banana": (1, 1)}
    index.stage(key(0), {"body": "apple band", "channel": "a"}, None)
    index.commit(2)
    view = index.view()
    assert view.holds_deleted  # tantivy marks the document deleted, its postings stay
    assert view.doc_freqs("apple") == (1, 2)
    assert view.expansions("ban") == {"banana": (1, 1)}
    index.close()


def test_search_keys_show_old_and_new_versions():
    old = {"body": "Red apple", "channel": "a"}
    new = {"body": "green", "channel": "b"}
    keys = search_keys_of(DEF, old, new)
    assert [k.tokens for k in keys] == [frozenset({"red", "apple"}), frozenset({"green"})]
    read = SearchRead("t.s", (), "app", (("channel", encode_value("a")),))
    assert read.touched_by(keys[0]) and not read.touched_by(keys[1])
    assert search_keys_of(DEF, None, {"body": 3}) == []  # not a string: not indexed


def test_replay_after_a_crash_between_commit_and_checkpoint_is_idempotent(tmp_path):
    folder = str(tmp_path / "t.s")
    index = TextIndex(folder, DEF)
    index.stage(key(2), None, {"body": "banana", "channel": "b"})
    index.commit(10)
    doc = {"body": "apple banana", "channel": "a"}
    index.stage(key(1), None, doc)
    index._writer.commit()  # tantivy has entry 11, the checkpoint file still says 10: a crash
    index.close()
    again = TextIndex(folder, DEF)
    assert again.checkpoint_ts == 10 and again.view().documents == 1
    again.stage(key(1), None, doc)  # replaying entry 11: delete by id, then add
    again.commit(11)
    view = again.view()
    assert (view.checkpoint_ts, view.documents, view.tokens) == (11, 2, 3)
    assert view.doc_freqs("banana")[0] == 2 and view.doc_freqs("apple")[0] == 1
    again.stage(key(2), {"body": "banana", "channel": "b"}, None)
    again.commit(12)
    view = again.view()
    assert view.expansions("ban") == {"banana": (1, view.doc_freqs("banana")[1])}
    a, b = (filter_token(encode_value(c)) for c in ("a", "b"))
    assert [k for _, k in view.top(["apple"], [(0, a)], 5)] == [key(1)]
    assert view.top(["apple"], [(0, b)], 5) == []
    again.close()


def test_a_changed_definition_starts_over(tmp_path):
    folder = str(tmp_path / "t.s")
    index = TextIndex(folder, DEF)
    index.stage(key(1), None, {"body": "x"})
    index.commit(5)
    index.close()
    other = TextIndex(folder, SearchIndexDef("t", "s", "title", ()))
    assert other.checkpoint_ts is None and other.view() is None
    other.close()


def test_our_bm25_matches_tantivys_when_statistics_agree(tmp_path):
    index = TextIndex(str(tmp_path / "t.s"), DEF)
    docs = {}
    words = ["apple", "banana", "band", "cherry"]
    for i in range(40):
        body = " ".join(words[(i * j) % 4] for j in range(1 + i % 7))
        docs[key(i)] = body
        index.stage(key(i), None, {"body": body, "channel": "a"})
    index.commit(1)
    view = index.view()
    n, avg = view.documents, view.tokens / view.documents
    weights = [(t, idf(n, view.doc_freqs(t)[0])) for t in ("apple", "band")]
    hits = view.top(["apple", "band"], [], 40)
    matching = [k for k, body in docs.items() if {"apple", "band"} & set(tokenize(body))]
    assert sorted(k for _, k in hits) == sorted(matching) and len(matching) > 10
    for native, k in hits:
        tokens = tokenize(docs[k])
        ours = bm25(weights, Counter(tokens), len(tokens), avg)
        assert abs(ours - native) <= 1e-5 * max(1.0, ours)
    index.close()


def test_the_matcher_finds_search_reads_by_term_prefix_and_filter():
    from engine.read_set import ReadSet, ReadSetBuilder
    from projections.subscriptions import SubscriptionMatcher

    def read_set(terms, prefix, channel=None):
        builder = ReadSetBuilder()
        filters = () if channel is None else (("channel", encode_value(channel)),)
        builder.add_search(SearchRead("t.s", terms, prefix, filters))
        return builder.build()

    matcher = SubscriptionMatcher()
    matcher.add(1, read_set(("red",), "app"))
    matcher.add(2, read_set((), "banana", "a"))
    matcher.add(3, read_set(("red",), "x", "b"))
    written = search_keys_of(DEF, None, {"body": "Red applesauce", "channel": "a"})
    assert matcher.match(written) == {1}
    written = search_keys_of(DEF, {"body": "bananas", "channel": "a"}, None)
    assert matcher.match([*written, ("t.by_id", b"k")]) == {2}
    assert matcher.match(search_keys_of(DEF, None, {"body": "red", "channel": "b"})) == {1, 3}
    matcher.remove(1)
    assert matcher.match(search_keys_of(DEF, None, {"body": "red", "channel": "b"})) == {3}
    both = read_set(("red",), "app").union(read_set((), "banana", "a"))
    assert len(both.searches) == 2 and both.intersects(written)
    assert ReadSet.empty().union(both) == both
