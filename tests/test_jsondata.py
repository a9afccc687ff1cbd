"""core/jsondata.py: session data as strict JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given

from typed_sessions.core.jsondata import encode_json

from .json_strategies import json_objects


@given(json_objects)
def test_encode_json_is_compact_standard_json(data: dict[str, Any]) -> None:
    assert encode_json(data) == json.dumps(data, separators=(",", ":"))
    assert json.loads(encode_json(data)) == data


def test_encode_json_refuses_what_json_cannot_hold() -> None:
    for bad in [{"a": float("nan")}, {"a": {1, 2}}, {"a": b"bytes"}, {"a": object()}]:
        with pytest.raises((TypeError, ValueError)):
            encode_json(bad)
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(RecursionError):
        encode_json(loop)
    assert encode_json("é") == '"\\u00e9"'
