"""Every cache in the engine stops at its bound from engine/limits.py."""

from __future__ import annotations

import json
from dataclasses import replace

from schemas import CHAT_SCHEMA

from engine.ids import _decode_valid_text, decode_id, encode_id
from engine.limits import LIMITS
from engine.schema import builtin_index_defs
from engine.snapshot import SchemaCache
from udf.call_validators import CallValidators


def test_decoded_ids_stop_at_their_bound():
    bound = LIMITS.id_cache_entries_max
    assert _decode_valid_text.cache_info().maxsize == bound
    for n in range(bound + 100):
        decode_id(encode_id(10_001, n.to_bytes(16, "big")))
    assert _decode_valid_text.cache_info().currsize == bound


def test_builtin_index_definitions_stop_at_their_bound():
    bound = LIMITS.builtin_index_cache_entries_max
    for n in range(bound + 100):
        builtin_index_defs(f"table{n}")
    assert builtin_index_defs.cache_info().currsize == bound


def test_parsed_schemas_stop_at_their_bound():
    cache = SchemaCache(entries_max=3)
    text = json.dumps(CHAT_SCHEMA)
    for version_ts in range(10):
        cache.get(version_ts, text)
        assert cache.statistics()["cached"] <= 3
    assert SchemaCache().statistics()["cached_max"] == LIMITS.schema_versions_cached_max


def test_parsed_function_validators_stop_at_their_bound():
    validators = CallValidators(replace(LIMITS, validator_cache_entries_max=3))
    for n in range(10):
        field = {"fieldType": {"type": "string"}, "optional": False}
        validator_json = json.dumps({"type": "object", "value": {f"f{n}": field}})
        assert validators._validator(validator_json) is not None
        assert len(validators._parsed) <= 3
