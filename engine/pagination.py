"""One page of a query, with Convex's reactive pagination (``1.0/queryPage``).

A page starts after ``cursor`` (exclusive; None = the start) and holds
``page_size`` documents — unless it has an end bound (``end_cursor``,
inclusive), in which case it holds *every* document up to the bound, however
many that is now. The bound is what keeps a live page gapless: the function
runtime records each run's ``continueCursor`` as the query's journal and, when
the same subscription runs again, passes it back as the end bound, so page 1
grows or shrinks in place instead of sliding over the start of page 2.

``maximumRowsRead``/``maximumBytesRead`` stop an unbounded page early with
``pageStatus: "SplitRequired"``; a page near the read limits (three quarters of
them) or longer than ``page_split_recommended_items`` says "SplitRecommended".
Either way the client splits it at ``splitCursor``, the position of the middle
row the page scanned; the reference always returns one when a page scanned more
than two rows. With an end bound the limits are not enforced: the page must
reach its bound to stay gapless.

Cursors. ``continueCursor`` is the position after the last row *scanned*
(a filtered-out row counts), or the end bound, or the end of the range; it is
url-safe base64 of a version byte, 8 bytes of the query's fingerprint, and
either ``0x00 ‖ index key`` or ``0x01`` (the end). A cursor of another query
is refused with the reference's ``InvalidCursor`` message, which the npm
client recognises and answers by restarting the pagination.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import cast

from engine.errors import InvalidQueryError
from engine.query_executor import Position, QueryStream, ScanBudget
from engine.query_spec import QuerySpec, SearchSource, fingerprint
from engine.read_context import ReadContext

_CURSOR_VERSION = 1
_AT_KEY = 0
_AT_END = 1
# The reference's texts (crates/isolate queryPage, crates/database invalid_cursor).
UNPARSABLE_CURSOR = "Failed to parse cursor"
DIFFERENT_QUERY_CURSOR = (
    "InvalidCursor: Tried to run a query starting from a cursor, but it looks like this "
    "cursor is from a different query."
)
SPLIT_REQUIRED = "SplitRequired"
SPLIT_RECOMMENDED = "SplitRecommended"


def _soft(limit: int) -> int:
    """Three quarters of a read limit: past it, a page should be split before it fails."""
    return limit * 3 // 4


def encode_cursor(spec_fingerprint: bytes, position: Position) -> str:
    head = bytes([_CURSOR_VERSION]) + spec_fingerprint[:8]
    body = bytes([_AT_END]) if position.key is None else bytes([_AT_KEY]) + position.key
    return base64.urlsafe_b64encode(head + body).decode()


def decode_cursor(cursor: object, spec_fingerprint: bytes) -> Position:
    """The position a cursor names; ``InvalidCursor`` if unreadable or of another query."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, UnicodeEncodeError) as exc:
        raise InvalidQueryError(UNPARSABLE_CURSOR, code="InvalidCursor") from exc
    if len(raw) < 10 or raw[0] != _CURSOR_VERSION or raw[9] not in (_AT_KEY, _AT_END):
        raise InvalidQueryError(UNPARSABLE_CURSOR, code="InvalidCursor")
    if raw[1:9] != spec_fingerprint[:8]:
        raise InvalidQueryError(DIFFERENT_QUERY_CURSOR, code="InvalidCursor")
    return Position(None if raw[9] == _AT_END else raw[10:])


@dataclass(frozen=True)
class PageResult:
    page: list[dict]
    continue_cursor: str
    is_done: bool
    split_cursor: str | None = None
    page_status: str | None = None  # None, SPLIT_RECOMMENDED or SPLIT_REQUIRED


def paginate(
    tx: ReadContext,
    spec: QuerySpec,
    cursor: str | None,
    page_size: int,
    *,
    end_cursor: str | None = None,
    maximum_rows_read: int | None = None,
    maximum_bytes_read: int | None = None,
) -> PageResult:
    """One page of ``spec`` after ``cursor``, up to ``end_cursor`` if given (module doc)."""
    _check_page_arguments(tx, page_size, maximum_rows_read, maximum_bytes_read)
    fp = fingerprint(spec)
    after = None if cursor is None else decode_cursor(cursor, fp)
    end = None if end_cursor is None else decode_cursor(end_cursor, fp)
    bounded = end is not None
    if after is not None and after.key is None:  # started at the end: nothing is left
        position = end if end is not None else after
        return PageResult([], encode_cursor(fp, position), position.key is None)
    enforced = None if bounded else maximum_rows_read, None if bounded else maximum_bytes_read
    budget = ScanBudget(*enforced)
    wanted = None if bounded else page_size
    stream = QueryStream(tx, spec, after=after, end=end, budget=budget, wanted=wanted)
    page: list[dict] = []
    while bounded or len(page) < page_size:
        doc = stream.next()
        if doc is None:
            break
        page.append(doc)
    if end is not None:
        position = end
    elif stream.exhausted:
        position = Position(None)
    else:
        position = Position(stream.last_key)
    status = None
    if budget.stopped:
        status = SPLIT_REQUIRED
    elif len(page) > tx.limits.page_split_recommended_items or _near_read_limits(
        tx, budget, maximum_rows_read, maximum_bytes_read
    ):
        status = SPLIT_RECOMMENDED
    split = None
    if len(budget.keys) > 2 and not isinstance(spec.source, SearchSource):
        split = encode_cursor(fp, Position(budget.keys[len(budget.keys) // 2]))
    return PageResult(page, encode_cursor(fp, position), position.key is None, split, status)


def _near_read_limits(
    tx: ReadContext, budget: ScanBudget, rows_max: int | None, bytes_max: int | None
) -> bool:
    rows_cap = min(rows_max or tx.limits.documents_read_max, tx.limits.documents_read_max)
    bytes_cap = min(bytes_max or tx.limits.read_bytes_max, tx.limits.read_bytes_max)
    return budget.rows_read > _soft(rows_cap) or budget.bytes_read > _soft(bytes_cap)


def _check_page_arguments(
    tx: ReadContext, page_size: object, rows_max: object, bytes_max: object
) -> None:
    """The reference's checks, codes and texts for queryPage's numbers."""
    for name, value in (
        ("pageSize", page_size),
        ("maximumRowsRead", rows_max),
        ("maximumBytesRead", bytes_max),
    ):
        if value is None and name != "pageSize":
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidQueryError(
                f"Invalid argument `{name}` for `queryPage`: expected a non-negative integer, "
                f"got {value!r}.",
                code="InvalidArgument",
            )
    page_size = cast(int, page_size)
    if page_size == 0:
        raise InvalidQueryError(
            "Must request at least 1 document while paginating", code="NoDocumentsForPagination"
        )
    if page_size > tx.limits.page_size_max:
        raise InvalidQueryError(f"Requested too many items: {page_size}", code="PageSizeTooLarge")
    if rows_max == 0 or bytes_max == 0:
        raise InvalidQueryError(
            "maximumRowsRead and maximumBytesRead must be greater than 0",
            code="InvalidPaginationLimit",
        )
