"""The SQL store's pure row mapping: exact times, and no row that makes decoding raise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from typed_sessions import Device, Expiry, SessionCodec, SessionId, new_session
from typed_sessions.core.result import Err, Ok
from typed_sessions.stores.sql_rows import decode_info, decode_record, inserted_row
from typed_sessions.stores.sql_table import from_micros, to_micros

CODEC: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any])
MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
)
ANYTHING = st.one_of(st.none(), st.integers(), st.text(), st.floats(), st.binary(), st.booleans())


@given(MOMENTS, st.integers(-14 * 60, 14 * 60))
def test_times_round_trip_exactly_whatever_their_offset(moment: datetime, minutes: int) -> None:
    shifted = moment.astimezone(timezone(timedelta(minutes=minutes)))
    assert from_micros(to_micros(shifted)) == moment


@given(
    st.dictionaries(st.text(), st.one_of(st.integers(), st.text(), st.none())),
    MOMENTS,
    st.one_of(st.none(), st.text(min_size=1, max_size=20).filter(str.isalnum)),
    st.one_of(st.none(), st.builds(Device, st.text(max_size=30), st.none())),
)
def test_a_saved_record_decodes_to_itself(
    data: dict[str, Any], now: datetime, subject: str | None, device: Device | None
) -> None:
    session = new_session(
        data,
        Expiry(),
        now=min(now, datetime(8000, 1, 1, tzinfo=UTC)),
        subject=subject,
        auth_time=now,
        device=device,
    )
    row = inserted_row("k", session, CODEC.encode_data(data).decode())
    row["version"] = 1
    loaded = decode_record(
        CODEC,
        session.id,
        tuple(
            row[c]
            for c in (
                "version",
                "data",
                "created_at",
                "last_active",
                "expires_at",
                "subject",
                "auth_time",
                "device",
            )
        ),
    )
    fields: dict[str, Any] = {**_fields(session), "version": 1}
    assert loaded == Ok(session.__class__(**fields))


def _fields(session: Any) -> dict[str, Any]:
    return {name: getattr(session, name) for name in session.__dataclass_fields__}


@given(st.tuples(*([ANYTHING] * 8)))
def test_any_row_decodes_or_gives_err_never_raises(row: tuple[Any, ...]) -> None:
    assert isinstance(decode_record(CODEC, SessionId("x"), row), Ok | Err)


@given(st.tuples(*([ANYTHING] * 6)))
def test_any_listing_row_decodes_or_gives_err_never_raises(row: tuple[Any, ...]) -> None:
    assert isinstance(decode_info("ada", row), Ok | Err)
