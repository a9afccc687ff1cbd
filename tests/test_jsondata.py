"""core/jsondata.py: session data as strict JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given

from typed_sessions import SessionEncodeError
from typed_sessions.core.jsondata import encode_json, validate_json

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


@pytest.fixture
def long_ints() -> Iterator[None]:
    """An app that lifted Python's int-to-text limit for its own ints."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(limit)


@pytest.mark.usefixtures("long_ints")
def test_an_int_longer_than_a_store_reads_is_refused_where_the_app_lifted_the_limit() -> None:
    """The stdlib encodes it then, but pydantic reads no int of more than 4,300 digits:
    saved, the session could never be loaded."""
    assert validate_json({"n": 10**4299}) == '{"n":1' + "0" * 4299 + "}"
    with pytest.raises(SessionEncodeError, match="key 'n'"):
        validate_json({"ok": 1, "n": 10**4300})
    with pytest.raises(SessionEncodeError, match="key 'deep'"):
        validate_json({"deep": [[-(10**5000)]]})
