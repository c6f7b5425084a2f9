from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import IntegrityError, InvalidIdError
from engine.ids import (
    ALPHABET,
    TABLE_NUMBER_MAX,
    DocumentId,
    decode_id,
    encode_id,
    new_internal_id,
    table_number_of,
)

EXAMPLE = "j579t1x2pxcx6vdfn0gn41k4498ej10p"
EXAMPLE_INTERNAL = bytes.fromhex("9d07a2b759d36dafa8215206642250e9")

table_numbers = st.integers(1, TABLE_NUMBER_MAX)
internals = st.binary(min_size=16, max_size=16)


def raw_text(buf: bytes) -> str:
    """Base32 text of arbitrary bytes, to build ids the encoder would never make."""
    rfc = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    text = base64.b32encode(buf).decode().rstrip("=")
    return text.translate(str.maketrans(rfc, ALPHABET))


def checksum(buf: bytes) -> bytes:
    c0 = c1 = 0
    for b in buf:
        c0 = (c0 + b) % 256
        c1 = (c1 + c0) % 256
    return bytes([c0, c1])


def test_worked_example_decodes_to_its_table_and_internal_id():
    doc_id = decode_id(EXAMPLE)
    assert doc_id == DocumentId(10001, EXAMPLE_INTERNAL)
    assert doc_id.encode() == EXAMPLE
    assert encode_id(10001, EXAMPLE_INTERNAL) == EXAMPLE
    assert table_number_of(EXAMPLE) == 10001


def test_reference_stability_vector():
    internal = [251]
    for _ in range(15):
        internal.append(internal[-1] * 251 % 256)
    assert encode_id(1017, bytes(internal)) == "z43zp6c3e75gkmz1kfwj6mbbx5sw281h"


@pytest.mark.parametrize(
    ("table_number", "length"),
    [
        (1, 31),
        (127, 31),
        (128, 32),
        (10001, 32),
        (16383, 32),
        (16384, 34),
        ((1 << 21) - 1, 34),
        (1 << 21, 36),
        ((1 << 28) - 1, 36),
        (1 << 28, 37),
        (TABLE_NUMBER_MAX, 37),
    ],
)
def test_length_by_table_number(table_number, length):
    text = encode_id(table_number, bytes(range(16)))
    assert len(text) == length
    assert decode_id(text) == DocumentId(table_number, bytes(range(16)))


@given(table_numbers, internals)
def test_round_trip(table_number, internal):
    text = encode_id(table_number, internal)
    assert set(text) <= set(ALPHABET)
    doc_id = decode_id(text)
    assert (doc_id.table_number, doc_id.internal) == (table_number, internal)
    assert DocumentId.from_storage_key(doc_id.storage_key()) == doc_id


@given(table_numbers, internals, internals)
def test_ids_of_one_table_sort_as_text_like_their_internal_ids(table_number, a, b):
    ta, tb = encode_id(table_number, a), encode_id(table_number, b)
    assert len(ta) == len(tb)
    assert (ta < tb) == (a < b)
    assert (ta < tb) == (DocumentId(table_number, a) < DocumentId(table_number, b))


@given(table_numbers, internals, table_numbers, internals)
def test_storage_keys_sort_by_table_then_internal_id(t1, i1, t2, i2):
    k1 = DocumentId(t1, i1).storage_key()
    k2 = DocumentId(t2, i2).storage_key()
    assert len(k1) == len(k2) == 20
    assert (k1 < k2) == ((t1, i1) < (t2, i2))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("j579t", "Invalid ID length 5"),
        ("", "Invalid ID length 0"),
        (EXAMPLE + "0", "Invalid ID length 33"),
        (EXAMPLE[:-1] + "u", "Invalid character 'u' at position 31"),
        (EXAMPLE[:-1] + "i", "Invalid character 'i'"),
        (EXAMPLE.upper(), "Invalid character 'J' at position 0"),
        (EXAMPLE[:-1] + "q", "checksum"),
        ("k" + EXAMPLE[1:], "checksum"),
    ],
)
def test_rejections(text, message):
    with pytest.raises(InvalidIdError, match=message) as info:
        decode_id(text)
    assert str(info.value).startswith("Unable to decode ID: ")
    assert info.value.code == "InvalidId"


def test_rejects_table_zero():
    body = b"\x00" + bytes(16)
    with pytest.raises(InvalidIdError, match="Invalid table number"):
        decode_id(raw_text(body + checksum(body)))


def test_rejects_a_table_number_past_32_bits():
    body = b"\xff\xff\xff\xff\x7f" + bytes(16)
    with pytest.raises(InvalidIdError, match="Invalid table number"):
        decode_id(raw_text(body + checksum(body)))


def test_rejects_trailing_bytes():
    body = b"\x91\x4e" + EXAMPLE_INTERNAL
    text = raw_text(body + checksum(body) + b"\x00")  # 21 bytes: 34 characters
    assert len(text) == 34
    with pytest.raises(InvalidIdError, match="Invalid ID length 34"):
        decode_id(text)


def test_rejects_a_varint_that_is_not_minimal():
    body = b"\x81\x00" + EXAMPLE_INTERNAL  # table 1 spelled in two bytes
    with pytest.raises(InvalidIdError, match="canonical"):
        decode_id(raw_text(body + checksum(body)))


def test_rejects_nonzero_padding_bits():
    # 32 characters carry 160 bits for 20 bytes: no padding. 31 carry 155 for 19: 3 spare bits.
    short = encode_id(5, EXAMPLE_INTERNAL)
    assert len(short) == 31
    last = ALPHABET.index(short[-1])
    assert last & 0b111 == 0
    tampered = short[:-1] + ALPHABET[last | 1]
    with pytest.raises(InvalidIdError, match="canonical"):
        decode_id(tampered)


@pytest.mark.parametrize("text", [None, 10001, b"j579t1x2pxcx6vdfn0gn41k4498ej10p"])
def test_rejects_non_strings(text):
    with pytest.raises(InvalidIdError, match="expected a string"):
        decode_id(text)


@pytest.mark.parametrize(
    ("table_number", "internal"),
    [
        (0, bytes(16)),
        (TABLE_NUMBER_MAX + 1, bytes(16)),
        (1, bytes(15)),
        (1, "x" * 16),
        (True, bytes(16)),
    ],
)
def test_bad_parts_cannot_make_an_id(table_number, internal):
    with pytest.raises(InvalidIdError):
        encode_id(table_number, internal)
    with pytest.raises(InvalidIdError):
        DocumentId(table_number, internal)


@pytest.mark.parametrize("data", [b"", bytes(19), bytes(21), bytes(20)])
def test_bad_storage_keys_are_integrity_errors(data):
    with pytest.raises(IntegrityError):
        DocumentId.from_storage_key(data)


def test_new_internal_id_is_random_bytes_then_the_day():
    now_ms = 20713 * 86_400_000 + 12_345.5
    internal = new_internal_id(lambda n: bytes(range(n)), now_ms)
    assert internal == bytes(range(14)) + bytes.fromhex("50e9")


def test_new_internal_id_insists_on_14_random_bytes():
    with pytest.raises(ValueError, match="14"):
        new_internal_id(lambda n: bytes(n - 1), 0.0)


@given(st.binary(min_size=17, max_size=21), st.integers(0, 7))
def test_anything_that_decodes_re_encodes_to_the_same_text(body, spare):
    text = raw_text(body + checksum(body))
    last = ALPHABET.index(text[-1]) | (spare & ((1 << (len(text) * 5 % 8)) - 1))
    for candidate in (text, text[:-1] + ALPHABET[last]):
        try:
            doc_id = decode_id(candidate)
        except InvalidIdError:
            continue
        assert doc_id.encode() == candidate


@given(st.text(alphabet=ALPHABET, min_size=31, max_size=37))
def test_random_text_either_decodes_exactly_or_is_rejected(text):
    try:
        doc_id = decode_id(text)
    except InvalidIdError:
        return
    assert doc_id.encode() == text
