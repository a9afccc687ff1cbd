"""The JSON codec: any pydantic-validatable data, no pickle, Err on bad bytes."""

from __future__ import annotations

import dataclasses
import itertools
import json
import uuid
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    computed_field,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import to_json
from typing_extensions import TypedDict

from typed_sessions import (
    DecodeError,
    Err,
    Expiry,
    Ok,
    SessionCodec,
    SessionEncodeError,
    SessionId,
    new_session,
    replace_data,
)
from typed_sessions.core import subjects as subjects_module

from .conftest import START


class User(BaseModel):
    name: str
    roles: list[str] = []


class Cart(TypedDict):
    items: list[int]


@dataclass
class Point:
    x: int
    y: int


@pytest.mark.parametrize(
    ("data_type", "data"),
    [
        (User, User(name="ada", roles=["admin"])),
        (Cart, {"items": [1, 2]}),
        (dict[str, Any], {"nested": {"list": [1, "two", None]}, "n": 1.5}),
        (Point, Point(1, 2)),
        (int, 7),
    ],
)
def test_round_trip(data_type: Any, data: Any) -> None:
    codec: SessionCodec[Any] = SessionCodec(data_type)
    session = new_session(data, Expiry(), now=START)
    raw = codec.encode(session)
    assert raw.startswith(b"{")
    assert codec.decode(raw) == Ok(session)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"\x80\x03cos\nsystem\n",  # a pickle
        b'{"id": "x"}',
        b'{"id":"x","data":{"name":1},"created_at":"2026-01-01T00:00:00Z",'
        b'"last_active":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:00:00Z","version":1}',
        b"\xff\xfe garbage",
        "not json",
    ],
)
def test_bad_bytes_are_err(raw: bytes | str) -> None:
    assert isinstance(SessionCodec(User).decode(raw), Err)


def test_unserializable_data_raises_clearly() -> None:
    codec: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any])
    session = new_session({"handle": object()}, Expiry(), now=START)
    with pytest.raises(SessionEncodeError, match="not JSON-serializable"):
        codec.encode(session)


class Tree(BaseModel):
    children: list[Tree] = []


def tree(depth: int) -> Tree:
    node = Tree()
    for _ in range(depth - 1):
        node = Tree(children=[node])
    return node


def test_what_encodes_decodes_again() -> None:
    """pydantic writes nesting its parser will not read back: the codec refuses it."""
    codec = SessionCodec(Tree)
    fine = new_session(tree(60), Expiry(), now=START)  # 120 levels, 120+ brackets
    assert codec.decode(codec.encode(fine)) == Ok(fine)
    assert codec.decode_data(codec.encode_data(fine.data)) == Ok(fine.data)
    too_deep = new_session(tree(110), Expiry(), now=START)  # 220 levels
    with pytest.raises(SessionEncodeError, match="could not be read back"):
        codec.encode(too_deep)
    with pytest.raises(SessionEncodeError, match="could not be read back"):
        codec.encode_data(too_deep.data)
    wide = new_session(Tree(children=[Tree() for _ in range(500)]), Expiry(), now=START)
    assert codec.decode(codec.encode(wide)) == Ok(wide)  # many brackets, shallow: fine


class Named(BaseModel):
    name: str = Field(max_length=10)


class Guest(BaseModel):
    guest: bool = True


def test_data_that_no_longer_validates_is_refused_before_any_write() -> None:
    """pydantic serializes a model changed without validation; it would never load again."""
    codec = SessionCodec(Named)
    session = new_session(Named(name="ada"), Expiry(), now=START)
    changed = session.data.model_copy(update={"name": "a name longer than ten"})
    with pytest.raises(SessionEncodeError, match=r"data\.name: String should have at most 10"):
        codec.encode(replace_data(session, changed, now=START))
    with pytest.raises(SessionEncodeError, match=r"could not be read back: name:"):
        codec.encode_data(changed)
    assigned = Named(name="ada")
    assigned.name = "another name too long"  # no validate_assignment: pydantic allows it
    with pytest.raises(SessionEncodeError, match="could not be read back"):
        codec.encode_data(assigned)


_PLANS = {"basic": 1, "pro": 2}


class Plan(BaseModel):
    """A model whose own validator raises a ``KeyError``, not a ``ValueError``."""

    plan: str

    @field_validator("plan")
    @classmethod
    def _sold(cls, value: str) -> str:
        _PLANS[value]  # a plan no longer sold: KeyError
        return value


def test_a_validator_raising_anything_is_a_verdict_on_the_record_never_an_exception() -> None:
    """The model's validator is the app's code: whatever it raises, decoding says ``Err``
    (then the store's ``on_corrupt`` decides), and ``upgrade`` still gets its chance."""
    codec = SessionCodec(Plan)
    record = codec.encode(new_session(Plan(plan="pro"), Expiry(), now=START))
    raw = record.replace(b'"pro"', b'"legacy"')
    found = codec.decode(raw)
    assert isinstance(found, Err)
    assert found.error.reason == "invalid session record (validation raised KeyError)"
    data = codec.decode_data(b'{"plan":"legacy"}')
    assert data == Err(DecodeError("invalid session data (validation raised KeyError)"))
    upgraded = SessionCodec(Plan, upgrade=lambda value: {"plan": "basic"})
    assert upgraded.decode_data(b'{"plan":"legacy"}') == Ok(Plan(plan="basic"))
    result = upgraded.decode(raw)
    assert isinstance(result, Ok)
    assert result.value.data == Plan(plan="basic")
    failing = SessionCodec(Plan, upgrade=lambda value: value)
    assert failing.decode_data(b'{"plan":"legacy"}') == Err(
        DecodeError("invalid session data after upgrade (validation raised KeyError)")
    )
    assigned = Plan(plan="pro")
    assigned.plan = "legacy"  # no validate_assignment: it would never load again
    with pytest.raises(SessionEncodeError, match="read back: validation raised KeyError"):
        codec.encode_data(assigned)


def test_a_value_of_another_type_is_refused() -> None:
    codec: SessionCodec[Any] = SessionCodec(Named | Guest)
    with (
        pytest.warns(UserWarning, match="serializ"),  # pydantic's own warning, then ours
        pytest.raises(SessionEncodeError, match="could not be read back"),
    ):
        codec.encode_data(42)
    assert codec.decode_data(codec.encode_data(Guest())) == Ok(Guest())


class Later(BaseModel):
    cart: LaterCart | None = None


LATER = SessionCodec(Later)  # built while LaterCart does not exist yet


class LaterCart(BaseModel):
    items: list[str] = []


Later.model_rebuild()


def test_a_codec_built_before_its_model_is_complete_works_once_it_is() -> None:
    session = new_session(Later(cart=LaterCart(items=["x"])), Expiry(), now=START)
    assert LATER.decode(LATER.encode(session)) == Ok(session)
    assert LATER.decode_data(LATER.encode_data(session.data)) == Ok(session.data)


@given(st.text(max_size=40))
def test_the_id_heads_the_record_as_json_empty_or_not(session_id: str) -> None:
    """A record's first field is its ID as a JSON string: the empty one (a store's) too."""
    codec: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any])
    session = dataclasses.replace(
        new_session({"k": session_id}, Expiry(), now=START), id=SessionId(session_id)
    )
    raw = codec.encode(session)
    assert raw.startswith(b'{"id":' + to_json(session_id) + b",")
    assert json.loads(raw)["id"] == session_id
    assert codec.decode(raw) == Ok(session)


@pytest.mark.parametrize("data_type", [dict[str, Any], dict, Any])
def test_data_that_holds_itself_is_refused_and_the_checks_end(data_type: Any) -> None:
    """The walk behind the NaN and key checks stops at a container it has seen."""
    codec: SessionCodec[Any] = SessionCodec(data_type)
    looped: dict[Any, Any] = {"n": float("nan")}
    looped["self"] = looped
    odd: dict[Any, Any] = {1: "x"}
    odd["self"] = odd
    for data in (looped, odd):
        with pytest.raises(SessionEncodeError):
            codec.encode_data(data)
        with pytest.raises(SessionEncodeError):
            codec.encode(new_session(data, Expiry(), now=START))


def test_a_dict_subclass_is_checked_by_its_own_keys() -> None:
    """The key check reads ``dict``'s keys, not an overriding ``__iter__``."""

    class Quiet(dict[Any, Any]):
        def __iter__(self) -> Any:
            return iter(())

    codec: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any])
    with pytest.raises(SessionEncodeError, match="has the key 1"):
        codec.encode_data(Quiet({1: "x"}))
    assert codec.encode_data(Quiet({"a": 1})) == b'{"a":1}'


class Reading(BaseModel):
    x: float


@dataclass
class Sample:
    x: float


@pytest.mark.parametrize(
    ("data_type", "data", "where"),
    [
        (dict[str, Any], {"m": Reading(x=float("nan"))}, r"data\['m'\]\['x'\] is nan"),
        (dict[str, Any], {"m": Sample(x=float("inf"))}, r"data\['m'\]\['x'\] is inf"),
        # (pydantic before 2.11 writes no deque at all: refused as not serializable)
        (dict[str, Any], {"q": deque([1.0, float("nan")])}, r"data\['q'\]\[1\] is nan|deque"),
        (Any, Reading(x=float("nan")), r"data\['x'\] is nan"),
        (Any, [{1: "a", "1": "b"}], r"data\[0\] has the key 1"),
        (Any, ({1: "a"},), r"data\[0\] has the key 1"),
    ],
)
def test_what_hides_inside_other_values_is_found(data_type: Any, data: Any, where: str) -> None:
    """A NaN inside a model, a dataclass or a deque in dict data, and a lone nested dict
    under a list, are refused as the rest are, through both encodings."""
    codec: SessionCodec[Any] = SessionCodec(data_type)
    with pytest.raises(SessionEncodeError, match=where):
        codec.encode_data(data)
    with pytest.raises(SessionEncodeError, match=where):
        codec.encode(new_session(data, Expiry(), now=START))


class Tally(BaseModel):
    counts: dict[str, int]


@pytest.mark.parametrize(
    ("data_type", "data", "where"),
    [
        (dict[str, Any], dict.fromkeys(["\ud800", "\udc00"], 1), r"data has the key '\\ud800'"),
        (dict[str, int], {"ok": 1, "a\udfffb": 2}, r"data has the key 'a\\udfffb'"),
        (Tally, Tally(counts={"\ud83d": 1}), r"data\['counts'\] has the key '\\ud83d'"),
    ],
)
def test_a_key_with_a_lone_surrogate_is_refused(data_type: Any, data: Any, where: str) -> None:
    """pydantic writes a str-typed key's lone surrogate as U+FFFD, where two keys may meet
    and lose a value: refused, through both encodings (an audit found them saved)."""
    codec: SessionCodec[Any] = SessionCodec(data_type)
    with pytest.raises(SessionEncodeError, match=where):
        codec.encode_data(data)
    with pytest.raises(SessionEncodeError, match=where):
        codec.encode(new_session(data, Expiry(), now=START))


_KEY_CHARS = st.characters(codec="utf-8") | st.characters(categories=["Cs"]) | st.just("\ufffd")


def _is_unicode(text: str) -> bool:
    return not any(0xD800 <= ord(char) <= 0xDFFF for char in text)  # no surrogate


@given(st.dictionaries(st.text(_KEY_CHARS, max_size=3), st.integers(), max_size=4))
def test_a_key_is_kept_as_it_is_or_refused(data: dict[str, int]) -> None:
    """Never silently changed: refused exactly when a key holds a lone surrogate (U+FFFD
    itself is fine); else it loads back the same."""
    codec: SessionCodec[dict[str, int]] = SessionCodec(dict[str, int])
    try:
        raw = codec.encode_data(data)
    except SessionEncodeError:
        assert not all(_is_unicode(key) for key in data)
        return
    assert all(_is_unicode(key) for key in data)
    assert codec.decode_data(raw) == Ok(data)


def test_a_key_whose_repr_fails_is_still_a_clear_refusal() -> None:
    class Odd(int):
        __hash__ = int.__hash__

        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    codec: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any])
    with pytest.raises(SessionEncodeError, match="has the key <Odd>"):
        codec.encode_data({Odd(1): 1})  # type: ignore[dict-item]


@pytest.mark.parametrize("data_type", [dict[str, Any], dict, Any])
def test_an_int_too_long_to_read_back_is_refused_before_any_write(data_type: Any) -> None:
    """pydantic writes an int of more than 4,300 digits but cannot read it again: such
    data is refused at save, not acknowledged and then unreadable (503 until it expires)."""
    codec: SessionCodec[Any] = SessionCodec(data_type, max_data_bytes=None)
    fits = {"n": 10**4299}  # 4,300 digits: read back
    assert codec.decode_data(codec.encode_data(fits)) == Ok(fits)
    session = new_session(fits, Expiry(), now=START)
    assert isinstance(codec.decode(codec.encode(session)), Ok)
    too_long = {"n": 10**4300}
    with pytest.raises(SessionEncodeError, match="could not be read back"):
        codec.encode_data(too_long)
    with pytest.raises(SessionEncodeError, match="could not be read back"):
        codec.encode(new_session(too_long, Expiry(), now=START))


def test_a_record_encoded_at_a_far_future_clock_decodes() -> None:
    """What the codec writes, it reads: a record made at a (fake) clock in year 9950
    (found by a review of a first rule that refused times near datetime's limits)."""
    far = datetime(9950, 1, 1, tzinfo=UTC)
    codec: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any])
    session = new_session({"n": 1}, Expiry(), now=far, subject="ada")
    decoded = codec.decode(codec.encode(replace(session, version=1)))
    assert isinstance(decoded, Ok)


def test_decoding_a_record_checks_its_subject_once_not_at_every_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The subject of a record read back is checked as a save checks it: remembered."""
    calls = 0
    original = subjects_module._is_control  # pyright: ignore[reportPrivateUsage]

    def counting(char: str) -> bool:
        nonlocal calls
        calls += 1
        return original(char)

    monkeypatch.setattr(subjects_module, "_is_control", counting)
    subject = str(uuid.uuid4())  # a fresh subject: nothing remembered for it yet
    codec: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any])
    session = new_session({"n": 1}, Expiry(), now=datetime.now(UTC), subject=subject)
    raw = codec.encode(replace(session, id=SessionId(""), version=3))
    calls = 0
    for _ in range(100):
        assert isinstance(codec.decode(raw), Ok)
    assert calls <= len(subject)


# --- data pydantic's JSON would change (found by an audit) --------------------------


class WithSecret(BaseModel):
    user: str
    api_token: SecretStr


class WithAlias(BaseModel):
    user_name: str = Field(alias="userName")


class WithExcluded(BaseModel):
    user: str
    scratch: str = Field(default="", exclude=True)


class WithAny(BaseModel):
    extra: Any = None


class WithPrivate(BaseModel):
    user: str
    _cache: object = PrivateAttr(default_factory=object)


@dataclass(eq=False)
class Plain:
    items: list[str]


def test_a_secret_that_json_would_mask_is_refused_not_stored_masked() -> None:
    """pydantic writes a ``SecretStr`` as ``"**********"``: stored so, the secret was
    silently gone. The read-back now compares what it reads with what was written."""
    codec = SessionCodec(WithSecret)
    data = WithSecret(user="ada", api_token=SecretStr("t0ken"))
    with pytest.raises(SessionEncodeError, match="read back changed: api_token"):
        codec.encode_data(data)
    with pytest.raises(SessionEncodeError, match="read back changed: api_token"):
        codec.encode(new_session(data, Expiry(), now=START))


def test_a_value_in_a_field_typed_any_that_json_changes_is_refused() -> None:
    codec = SessionCodec(WithAny)
    with pytest.raises(SessionEncodeError, match="read back changed: extra"):
        codec.encode_data(WithAny(extra=START))  # read back as text
    assert codec.decode_data(codec.encode_data(WithAny(extra=[1, "a"]))) == Ok(
        WithAny(extra=[1, "a"])
    )


class CamelCart(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)
    item_ids: list[int] = []


class Visitor(BaseModel):
    kind: Literal["guest"] = Field(alias="Kind")


class Member(BaseModel):
    kind: Literal["member"] = Field(serialization_alias="Kind")


def test_found_by_review_a_field_read_by_its_alias_with_a_default_is_kept() -> None:
    """Written by name, such data validated (the unknown key ignored) and read back as
    the defaults: the comparison now sees it, and it is written by alias."""
    codec = SessionCodec(CamelCart)
    cart = CamelCart.model_validate({"itemIds": [1, 2]})
    assert codec.decode_data(codec.encode_data(cart)) == Ok(cart)


def test_found_by_review_each_member_of_a_union_is_written_its_own_way() -> None:
    codec: SessionCodec[Visitor | Member] = SessionCodec(Visitor | Member)
    visitor = Visitor.model_validate({"Kind": "guest"})
    for data in (Member(kind="member"), visitor, Member(kind="member")):
        assert codec.decode_data(codec.encode_data(data)) == Ok(data)


class ServedCamel(BaseModel):
    user_name: str = Field(serialization_alias="userName")


class WithClock(BaseModel):
    user: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def counted(self) -> int:
        return next(_COUNTER)


_COUNTER = itertools.count()


@pytest.mark.parametrize(
    "data",
    [ServedCamel(user_name="ada"), WithClock(user="ada")],
    ids=["serialization_alias", "computed_field"],
)
def test_found_by_review_a_serialization_alias_and_a_computed_field_are_stored(
    data: BaseModel,
) -> None:
    """Written by alias only when by name does not read back (a serialization alias
    alone is not read by validation); computed fields, which may differ from one dump
    to the next, are not compared."""
    codec: SessionCodec[Any] = SessionCodec(type(data))
    assert codec.decode_data(codec.encode_data(data)) == Ok(data)


@pytest.mark.parametrize(
    "data",
    [
        WithAlias(userName="ada"),  # written by its alias, which validation reads
        WithExcluded(user="ada"),
        WithPrivate(user="ada"),  # a private attribute is never written: not compared
        Plain(["a"]),  # no __eq__ of its own: compared as pydantic dumps it
    ],
    ids=["alias", "excluded", "private", "eq=False"],
)
def test_data_that_reads_back_as_written_is_stored(data: object) -> None:
    codec: SessionCodec[Any] = SessionCodec(type(data))
    decoded = codec.decode_data(codec.encode_data(data))
    assert isinstance(decoded, Ok)
    dump = codec._data.serializer.to_python  # pyright: ignore[reportPrivateUsage]
    assert dump(decoded.value) == dump(data)


def test_a_field_with_exclude_true_is_left_out_on_purpose() -> None:
    codec = SessionCodec(WithExcluded)
    raw = codec.encode_data(WithExcluded(user="ada", scratch="kept in memory only"))
    assert codec.decode_data(raw) == Ok(WithExcluded(user="ada"))
