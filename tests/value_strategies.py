"""Hypothesis strategies for Convex values that reach for the edges.

Order bugs hide at the edges: the int64 sign bit, negative floats (whose IEEE
bits sort backwards), -0.0 against 0.0, NaNs with and without the sign bit,
the infinities, zero bytes inside strings and bytes, one string a prefix of
another, and values of different types side by side. A pair drawn from two
independent wide strategies rarely lands on one of those, so ``pairs`` draws
the two values of a pair from the same edge-heavy kind most of the time, or
makes one a prefix of the other.
"""

from __future__ import annotations

import math
import struct

from hypothesis import strategies as st

from engine.values import INT64_MAX, INT64_MIN, UNSET


def float_from_bits(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


INT_EDGES = [INT64_MIN, INT64_MIN + 1, -(1 << 32), -(1 << 31), -2, -1, 0, 1, 2]
INT_EDGES += [(1 << 31) - 1, 1 << 32, INT64_MAX - 1, INT64_MAX]
FLOAT_EDGES = [
    -math.inf,
    -1.7976931348623157e308,  # most negative finite
    -2.0,
    -1.5,
    -1.0,
    -2.2250738585072014e-308,  # smallest negative normal
    -5e-324,  # negative subnormal closest to zero
    -0.0,
    0.0,
    5e-324,
    1.0,
    1.5,
    2.0,
    1.7976931348623157e308,
    math.inf,
    # NaNs: with the sign bit they sort below -inf, without it above inf; payloads differ.
    float_from_bits(0xFFF8_0000_0000_0000),
    float_from_bits(0xFFF0_0000_0000_0001),
    float_from_bits(0x7FF8_0000_0000_0000),
    float_from_bits(0x7FF0_0000_0000_0001),
]

ints = st.one_of(
    st.sampled_from(INT_EDGES),
    st.integers(-3, 3),
    st.integers(INT64_MIN, INT64_MAX),
    st.integers(INT64_MIN, -1),  # negatives are half of int64; make them a sure draw
)
floats = st.one_of(
    st.sampled_from(FLOAT_EDGES),
    st.floats(),  # hypothesis already favours 0.0, -0.0, nan, inf and their neighbours
    st.floats(max_value=-0.0),
    st.integers(0, (1 << 64) - 1).map(float_from_bits),  # every bit pattern, NaN payloads too
)
texts = st.one_of(
    st.text(max_size=5),
    st.text(alphabet="a\x00\x01\xff\u00e9\U00010000", max_size=4),
    st.sampled_from(["", "\x00", "\x00\x00", "a", "a\x00", "a\x00b", "a\x01", "ab", "\U00010000"]),
)
binaries = st.one_of(
    st.binary(max_size=5),
    st.lists(st.sampled_from([0x00, 0x01, 0xFE, 0xFF]), max_size=4).map(bytes),
    st.sampled_from([b"", b"\x00", b"\x00\x00", b"\x00\xff", b"\xff", b"a\x00", b"a"]),
)
field_names = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=4
).filter(lambda s: not s.startswith("$"))
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts, binaries)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(field_names, children, max_size=3)
    ),
    max_leaves=8,
)
values_or_unset = st.one_of(st.just(UNSET), values)


def _same_kind(kind: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(kind, kind)


def _prefixed(kind: st.SearchStrategy) -> st.SearchStrategy:
    """(a, a + b) and (a + b, a): one is a proper prefix of the other (or equal)."""
    return st.tuples(kind, kind, st.booleans()).map(
        lambda t: (t[0], t[0] + t[1]) if t[2] else (t[0] + t[1], t[0])
    )


def _clamped(n: int) -> int:
    return max(INT64_MIN, min(INT64_MAX, n))


int_neighbours = ints.flatmap(
    lambda n: st.sampled_from([(n, _clamped(-n)), (n, _clamped(n + 1)), (_clamped(n - 1), n)])
)
float_neighbours = floats.flatmap(
    lambda x: st.sampled_from(
        [(x, -x), (x, math.nextafter(x, math.inf)), (math.nextafter(x, -math.inf), x)]
    )
)

pairs = st.one_of(
    _same_kind(ints),
    int_neighbours,  # n and -n, n and n + 1: the sign bit and off-by-one
    _same_kind(floats),
    float_neighbours,  # x and -x (0.0 and -0.0, NaN and its negation), x and the next float
    _same_kind(texts),
    _same_kind(binaries),
    _prefixed(texts),
    _prefixed(binaries),
    _prefixed(st.lists(values, max_size=2)),
    st.tuples(ints, floats),  # 1 and 1.0 are different values of different types
    st.tuples(values_or_unset, values_or_unset),  # mixed types, nested
)
