"""Source maps: VLQ decoding, position lookup, and stack rewriting."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from udf.source_map import OriginalPosition, SourceMap, decode_vlq

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def encode_vlq(values: list[int]) -> str:
    out = []
    for value in values:
        n = (-value << 1) | 1 if value < 0 else value << 1
        while True:
            digit = n & 31
            n >>= 5
            out.append(B64[digit | (32 if n else 0)])
            if not n:
                break
    return "".join(out)


@given(st.lists(st.integers(min_value=-(2**40), max_value=2**40), min_size=1, max_size=6))
def test_vlq_round_trip(values):
    assert decode_vlq(encode_vlq(values)) == values


def test_vlq_rejects_garbage():
    with pytest.raises(ValueError, match="invalid base64"):
        decode_vlq("A!")
    with pytest.raises(ValueError, match="truncated"):
        decode_vlq("g")  # continuation bit set, nothing follows


def make_map() -> SourceMap:
    # Generated line 1: nothing. Line 2: col 0 -> a.ts 1:0, col 10 -> a.ts 3:4.
    # Line 3: col 2 -> b.ts 7:1.
    line2 = ",".join([encode_vlq([0, 0, 0, 0]), encode_vlq([10, 0, 2, 4])])
    line3 = encode_vlq([2, 1, 4, -3])
    text = json.dumps(
        {
            "version": 3,
            "sources": ["../convex/a.ts", "../node_modules/x/b.ts"],
            "mappings": ";" + line2 + ";" + line3,
        }
    )
    return SourceMap.from_json(text)


def test_lookup_finds_the_segment_at_or_before_the_column():
    source_map = make_map()
    assert source_map.lookup(1, 5) is None
    assert source_map.lookup(2, 1) == OriginalPosition("../convex/a.ts", 1, 1)
    assert source_map.lookup(2, 10) == OriginalPosition("../convex/a.ts", 1, 1)
    assert source_map.lookup(2, 11) == OriginalPosition("../convex/a.ts", 3, 5)
    assert source_map.lookup(3, 9) == OriginalPosition("../node_modules/x/b.ts", 7, 2)
    assert source_map.lookup(9, 1) is None
