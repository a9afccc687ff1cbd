"""Property tests of the pure core's parsers and renderers: hostile input never raises,
what is rendered parses back, what is encoded decodes back."""

from __future__ import annotations

import string
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from typed_sessions import (
    CookieSettings,
    Err,
    Expiry,
    Ok,
    SessionCodec,
    SessionEncodeError,
    new_session,
    parse_cookie,
    render_clear_cookie,
    render_set_cookie,
)
from typed_sessions.core.cookies import is_http_token

from .conftest import START

# RFC 9110 token characters: what cookie names are made of.
TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
names = st.text(TOKEN_CHARS, min_size=1, max_size=20)
# Cookie values as browsers send them back: no separators, no whitespace, no quotes.
values = st.text(string.ascii_letters + string.digits + "-_.~!$&'()*+/:<>?@[]^`{|}", max_size=40)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # hypothesis draws no surrogates by default: valid Unicode only
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
CODEC: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any])


@given(st.text(), names)
def test_parse_cookie_never_raises(header: str, name: str) -> None:
    found = parse_cookie(header, name)
    assert found is None or isinstance(found, str)


@given(st.lists(st.tuples(names, values), max_size=6), names, values)
def test_parse_cookie_finds_the_first_of_its_name(
    others: list[tuple[str, str]], name: str, value: str
) -> None:
    pairs = [*others, (name, value)]
    header = "; ".join(f"{key}={val}" for key, val in pairs)
    first = next(val for key, val in pairs if key == name)
    assert parse_cookie(header, name) == first


@given(names, values, st.sampled_from(["lax", "strict", "none"]), st.integers(1, 2**31))
def test_rendered_cookies_are_one_header_line_that_parses_back(
    name: str, value: str, samesite: Any, max_age: int
) -> None:
    settings = CookieSettings(name=name, samesite=samesite, max_age=max_age)
    for header in (render_set_cookie(settings, value), render_clear_cookie(settings)):
        assert header.isascii()
        assert not any(c in header for c in "\r\n\0")
    # The name=value pair a browser stores is what it sends back in its Cookie header.
    stored = render_set_cookie(settings, value).split(";", 1)[0]
    assert parse_cookie(stored, name) == value


@given(st.text())
def test_is_http_token_accepts_exactly_token_characters(text: str) -> None:
    assert is_http_token(text) == (bool(text) and all(c in TOKEN_CHARS for c in text))


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_decoding_anything_is_a_result_never_an_exception(raw: bytes | str) -> None:
    assert isinstance(CODEC.decode(raw), Ok | Err)
    assert isinstance(CODEC.decode_data(raw), Ok | Err)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_json_data_round_trips(data: dict[str, Any]) -> None:
    session = new_session(data, Expiry(), now=START)
    assert CODEC.decode(CODEC.encode(session)) == Ok(session)
    assert CODEC.decode_data(CODEC.encode_data(data)) == Ok(data)


# Values JSON cannot hold as they are, mixed in: non-finite floats, keys that are not str.
hostile_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=2) | st.integers(0, 3) | st.none(), inner, max_size=3)
    ),
    max_leaves=12,
)


def _same(a: object, b: object) -> bool:
    """Equal as JSON values are: NaN is not here (refused), -0.0 is not 0.0."""
    scalar: object = a  # (kept out of the narrowing below)
    other: object = b
    if isinstance(a, float) and isinstance(b, float):
        return repr(a) == repr(b)
    if isinstance(a, dict) and isinstance(b, dict):
        left, right = cast("dict[object, object]", a), cast("dict[object, object]", b)
        return list(left) == list(right) and all(_same(left[k], right[k]) for k in left)
    if isinstance(a, list) and isinstance(b, list):
        items, others = cast("list[object]", a), cast("list[object]", b)
        return len(items) == len(others) and all(map(_same, items, others))
    return type(scalar) is type(other) and scalar == other


@given(st.dictionaries(st.text(max_size=3), hostile_values, max_size=4))
def test_data_is_refused_or_comes_back_as_it_was(data: dict[str, Any]) -> None:
    """No silent change: what the codec writes decodes to equal data (NaN is never
    written as null, a key 1 never comes back as "1"), or it raises SessionEncodeError,
    through ``encode_data`` (memory and SQL stores) and ``encode`` (Redis) alike."""
    try:
        raw = CODEC.encode_data(data)
    except SessionEncodeError:
        pass
    else:
        decoded = CODEC.decode_data(raw)
        assert isinstance(decoded, Ok)
        assert _same(decoded.value, data)
    try:
        record = CODEC.encode(new_session(data, Expiry(), now=START))
    except SessionEncodeError:
        return
    loaded = CODEC.decode(record)
    assert isinstance(loaded, Ok)
    assert _same(loaded.value.data, data)
