"""`--ts` reads a commit ts in each spelling a user has: ns, base64, ISO-8601."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.timestamps import TS_MAX, encode_ts
from gateway.ts_arguments import format_iso, format_ts, parse_ts_argument

# ISO-8601 stops at year 9999; nanoseconds since 1970 reach 2262 before 2^63.
_TS = st.integers(min_value=0, max_value=TS_MAX)


@given(_TS)
@example(0)
@example(TS_MAX)
@example(1_796_310_560_226_583_302)
@example(1_796_310_560_000_000_001)
def test_every_printed_form_reads_back_exactly(ts):
    for form in format_ts(ts).split():
        assert parse_ts_argument(form) == ts, form
    assert parse_ts_argument(str(ts)) == parse_ts_argument(encode_ts(ts)) == ts


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-03T15:04:05.5Z",
        "2026-12-03T15:04:05.500000000Z",
        "2026-12-03T16:04:05.5+01:00",
        "2026-12-03 15:04:05,5",
        "2026-12-03T15:04:05.500",
    ],
)
def test_iso_times_with_offsets_separators_and_fractions(text):
    assert parse_ts_argument(text) == 1_796_310_245_500_000_000


def test_a_date_alone_is_its_midnight_utc():
    assert format_iso(parse_ts_argument("2026-12-03")) == "2026-12-03T00:00:00.000000000Z"


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "",
        "9223372036854775808",  # 2^63
        "1969-12-31T23:59:59Z",  # before the first possible ts
        "2026-12-03T15:04:05.1234567891Z",  # finer than a nanosecond
        "2026-13-03T15:04:05Z",
        "AAAA",  # base64 of 3 bytes, not 8
    ],
)
def test_what_is_not_a_ts_is_refused_with_the_forms_named(text):
    with pytest.raises(ValueError):
        parse_ts_argument(text)
