"""engine.pagination: pages, end bounds, split hints and the reference's errors."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pagination_model import A_VALUES, B_VALUES, ITEMS_SCHEMA, full_result, queries, query_json

from engine import Database, InvalidQueryError
from engine.limits import Limits
from engine.pagination import DIFFERENT_QUERY_CURSOR, paginate
from engine.query_spec import parse_query


@pytest.fixture
def items_db(db):
    db.set_schema(ITEMS_SCHEMA)
    return db


def _fill(db: Database, values: list[tuple[int, int]]) -> list[str]:
    return db.mutate(
        lambda tx: [tx.insert("items", {"a": float(a), "b": float(b)}) for a, b in values]
    ).value


def _page(db: Database, query: dict, cursor, size, **options):
    spec = parse_query(query)
    return db.query(lambda tx: paginate(tx, spec, cursor, size, **options)).value


def _ids(result) -> list[str]:
    return [d["_id"] for d in result.page]


def _walk(db: Database, query: dict, size: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(200):
        result = _page(db, query, cursor, size)
        seen.extend(_ids(result))
        if result.is_done:
            return seen
        cursor = result.continue_cursor
    raise AssertionError("pagination did not finish")


# -- every page size, both orders, ranges and filters ------------------------------------

ASC = query_json("by_a", "asc", None, None, True)
DESC = query_json("by_a", "desc", None, None, True)


def _replace_all(db: Database, values: list[tuple[int, int]]) -> None:
    """One database for every example: each starts from exactly ``values``."""

    def body(tx):
        for doc in tx.query("items").collect():
            tx.delete(doc["_id"])
        for a, b in values:
            tx.insert("items", {"a": float(a), "b": float(b)})

    db.mutate(body)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(st.tuples(st.integers(0, A_VALUES), st.integers(0, B_VALUES - 1)), max_size=9),
    query=queries(),
)
# Descending over an index with ties at the page boundary.
@example(values=[(1, 1), (1, 1), (1, 2), (2, 1)], query=query_json("by_a", "desc", 1, 3, True))
def test_pages_at_every_size_concatenate_to_the_whole_result(items_db, values, query):
    _replace_all(items_db, values)
    expected = full_result(items_db, query)
    for size in range(1, len(values) + 2):
        assert _walk(items_db, query, size) == expected, f"page size {size}"


def test_descending_pages_do_not_repeat_the_boundary_document(items_db):
    ids = _fill(items_db, [(i, 0) for i in range(5)])
    first = _page(items_db, DESC, None, 2)
    second = _page(items_db, DESC, first.continue_cursor, 2)
    assert _ids(first) == ids[::-1][:2] and _ids(second) == ids[::-1][2:4]
    assert not first.is_done and not second.is_done


# -- end cursors ---------------------------------------------------------------------


def test_an_end_cursor_returns_everything_up_to_it_whatever_the_page_size(items_db):
    ids = _fill(items_db, [(i, 0) for i in range(6)])
    first = _page(items_db, ASC, None, 3)
    assert _ids(first) == ids[:3]
    # Two documents inserted before the end: a page ending there holds all five.
    early = items_db.mutate(
        lambda tx: [tx.insert("items", {"a": 0.5, "b": 0.0}) for _ in range(2)]
    ).value
    again = _page(items_db, ASC, None, 3, end_cursor=first.continue_cursor)
    assert _ids(again) == [ids[0], *early, ids[1], ids[2]]  # ties: by creation time
    assert again.continue_cursor == first.continue_cursor and not again.is_done
    # The next page still starts right after the end: nothing lost, nothing twice.
    rest = _page(items_db, ASC, again.continue_cursor, 10)
    assert _ids(rest) == ids[3:] and rest.is_done


def test_an_end_cursor_is_inclusive_and_holds_when_its_document_is_deleted(items_db):
    ids = _fill(items_db, [(i, 0) for i in range(4)])
    first = _page(items_db, DESC, None, 2)  # ids[3], ids[2]
    items_db.mutate(lambda tx: tx.delete(ids[2]))
    again = _page(items_db, DESC, None, 2, end_cursor=first.continue_cursor)
    assert _ids(again) == [ids[3]]
    rest = _page(items_db, DESC, again.continue_cursor, 2)
    assert _ids(rest) == [ids[1], ids[0]]


def test_an_end_cursor_at_the_end_is_done_and_takes_documents_added_later(items_db):
    _fill(items_db, [(0, 0), (1, 0)])
    whole = _page(items_db, ASC, None, 5)
    assert whole.is_done
    added = _fill(items_db, [(2, 0)])
    again = _page(items_db, ASC, None, 1, end_cursor=whole.continue_cursor)
    assert len(again.page) == 3 and _ids(again)[-1] == added[0] and again.is_done


def test_an_end_cursor_of_another_query_is_refused(items_db):
    _fill(items_db, [(0, 0), (1, 0)])
    other = _page(items_db, DESC, None, 1)
    with pytest.raises(InvalidQueryError, match="different query") as info:
        _page(items_db, ASC, None, 1, end_cursor=other.continue_cursor)
    assert info.value.code == "InvalidCursor" and info.value.message == DIFFERENT_QUERY_CURSOR
    with pytest.raises(InvalidQueryError, match="Failed to parse cursor"):
        _page(items_db, ASC, None, 1, end_cursor="not a cursor!")


def test_a_cursor_at_the_end_gives_an_empty_done_page(items_db):
    _fill(items_db, [(0, 0)])
    whole = _page(items_db, ASC, None, 5)
    after = _page(items_db, ASC, whole.continue_cursor, 5)
    assert after.page == [] and after.is_done


# -- split cursors and page status ------------------------------------------------------


def test_split_cursor_is_mid_page_and_splits_it_into_two_gapless_halves(items_db):
    ids = _fill(items_db, [(i, 0) for i in range(7)])
    page = _page(items_db, ASC, None, 7)
    assert page.split_cursor is not None and page.page_status is None
    first = _page(items_db, ASC, None, 7, end_cursor=page.split_cursor)
    second = _page(items_db, ASC, page.split_cursor, 7, end_cursor=page.continue_cursor)
    assert _ids(first) + _ids(second) == ids
    assert len(_ids(first)) == 4  # the middle one of the seven rows scanned ends the first


def test_no_split_cursor_for_two_rows_or_fewer(items_db):
    _fill(items_db, [(0, 0), (1, 0)])
    assert _page(items_db, ASC, None, 5).split_cursor is None


def test_maximum_rows_read_stops_early_with_split_required(items_db):
    ids = _fill(items_db, [(i, 0) for i in range(10)])
    page = _page(items_db, ASC, None, 8, maximum_rows_read=4)
    assert _ids(page) == ids[:4]
    assert page.page_status == "SplitRequired" and not page.is_done
    assert page.split_cursor is not None
    rest = _page(items_db, ASC, page.continue_cursor, 8)
    assert _ids(rest) == ids[4:]


def test_maximum_rows_read_counts_rows_the_filter_drops(items_db):
    ids = _fill(items_db, [(i, i % 2) for i in range(10)])
    odd = query_json("table", "asc", None, None, False)
    page = _page(items_db, odd, None, 5, maximum_rows_read=4)
    assert _ids(page) == [ids[1], ids[3]] and page.page_status == "SplitRequired"


def test_maximum_rows_read_reaching_the_end_is_not_split_required(items_db):
    _fill(items_db, [(i, 0) for i in range(3)])
    page = _page(items_db, ASC, None, 8, maximum_rows_read=3)
    assert page.is_done and page.page_status != "SplitRequired"


def test_maximum_bytes_read_stops_after_the_row_that_passes_it(items_db):
    ids = _fill(items_db, [(i, 0) for i in range(6)])
    page = _page(items_db, ASC, None, 6, maximum_bytes_read=1)
    assert _ids(page) == ids[:1]  # at least one row: the page always makes progress
    assert page.page_status == "SplitRequired" and not page.is_done


def test_limits_are_not_enforced_with_an_end_cursor(items_db):
    ids = _fill(items_db, [(i, 0) for i in range(6)])
    whole = _page(items_db, ASC, None, 6)
    page = _page(items_db, ASC, None, 6, end_cursor=whole.continue_cursor, maximum_rows_read=2)
    assert _ids(page) == ids and page.page_status != "SplitRequired"


def test_a_page_near_the_read_limit_recommends_a_split(items_db):
    _fill(items_db, [(i, 0) for i in range(8)])
    page = _page(items_db, ASC, None, 8, maximum_rows_read=8)
    assert page.page_status == "SplitRecommended"  # 8 rows > three quarters of 8
    assert _page(items_db, ASC, None, 8).page_status is None


def test_a_long_page_recommends_a_split(tmp_path):
    limits = Limits(page_split_recommended_items=4)
    with Database.open(tmp_path / "d", limits=limits) as db:
        db.set_schema(ITEMS_SCHEMA)
        _fill(db, [(i, 0) for i in range(6)])
        assert _page(db, ASC, None, 4).page_status is None
        assert _page(db, ASC, None, 5).page_status == "SplitRecommended"


# -- the reference's argument errors ------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "code", "text"),
    [
        ({"page_size": 0}, "NoDocumentsForPagination", "Must request at least 1 document"),
        ({"page_size": 32_001}, "PageSizeTooLarge", "Requested too many items: 32001"),
        ({"maximum_rows_read": 0}, "InvalidPaginationLimit", "must be greater than 0"),
        ({"maximum_bytes_read": 0}, "InvalidPaginationLimit", "must be greater than 0"),
        ({"page_size": -1}, "InvalidArgument", "pageSize"),
        ({"page_size": 1.5}, "InvalidArgument", "pageSize"),
    ],
)
def test_bad_page_arguments_are_refused(items_db, options, code, text):
    options = dict(options)  # the parameter is shared by every run of the test
    size = options.pop("page_size", 5)
    with pytest.raises(InvalidQueryError, match=text) as info:
        _page(items_db, ASC, None, size, **options)
    assert info.value.code == code
