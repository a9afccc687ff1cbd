from __future__ import annotations

import dataclasses
from typing import assert_type

import pytest

from typed_sessions import Err, Ok, Result


def parse(text: str) -> Result[int, str]:
    return Ok(int(text)) if text.isdigit() else Err(f"not a number: {text}")


def test_match_on_ok_and_err() -> None:
    outcomes: list[int | str] = []
    for text in ("42", "x"):
        match parse(text):
            case Ok(value):
                assert_type(value, int)
                outcomes.append(value)
            case Err(error):
                assert_type(error, str)
                outcomes.append(error)
    assert outcomes == [42, "not a number: x"]


def test_isinstance_narrows() -> None:
    result = parse("7")
    assert isinstance(result, Ok)
    assert_type(result, Ok[int])
    assert result.value == 7


def test_results_are_frozen_values() -> None:
    assert Ok(1) == Ok(1)
    ok: Result[int, int] = Ok(1)
    assert ok != Err(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Ok(1).value = 2  # type: ignore[misc]  # the point of the test


def test_results_compare_hash_and_copy_as_values() -> None:
    import copy

    assert hash(Ok(1)) == hash(Ok(value=1))
    assert Err("x") == Err(error="x")
    assert copy.deepcopy(Ok([1, 2])) == Ok([1, 2])
    assert repr(Err("boom")) == "Err(error='boom')"
