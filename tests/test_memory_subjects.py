"""The memory store's subject index stays in step with its records, whatever happens:
saves, subject changes, endings, deletes, expiry, sweeps, eviction and the cap."""

# pyright: reportPrivateUsage=false
# (the invariants read the store's records and index, by name)

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from typed_sessions import (
    Expiry,
    MemoryStore,
    Ok,
    Session,
    SessionId,
    expire_session,
    new_session,
    session_handle,
)

from .conftest import FakeClock, run

SUBJECTS = ("ada", "bob")
CAP = 3
subjects = st.sampled_from([*SUBJECTS, None])
expiries = st.sampled_from(
    [
        Expiry(idle=timedelta(minutes=5), absolute=timedelta(minutes=20)),
        Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=1)),
    ]
)


class MemoryIndexMachine(RuleBasedStateMachine):
    ids = Bundle("ids")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.store: MemoryStore[dict[str, Any]] = MemoryStore(
            dict[str, Any],
            max_sessions=6,
            clock=self.clock,
            sweep_interval=timedelta(minutes=7),
            max_per_subject=CAP,
        )
        self.ended: set[SessionId] = set()

    def current(self, session_id: SessionId) -> Session[dict[str, Any]] | None:
        return run(self.store.load(session_id))

    @rule(target=ids, subject=subjects, expiry=expiries, later=st.booleans())
    def sign_in(self, subject: str | None, expiry: Expiry, later: bool) -> SessionId:
        if later:  # else it starts when the last one did: the cap counts them once
            self.clock.advance(timedelta(microseconds=1))
        made: Session[dict[str, Any]] = new_session({}, expiry, now=self.clock(), subject=subject)
        assert isinstance(run(self.store.save(made)), Ok)
        return made.id

    @rule(session_id=ids, subject=subjects)
    def resave_as(self, session_id: SessionId, subject: str | None) -> None:
        loaded = self.current(session_id)
        if loaded is not None:
            assert isinstance(
                run(self.store.save(dataclasses.replace(loaded, subject=subject))), Ok
            )

    @rule(session_id=ids)
    def end_by_saving(self, session_id: SessionId) -> None:
        loaded = self.current(session_id)
        if loaded is not None:
            assert isinstance(run(self.store.save(expire_session(loaded))), Ok)
            self.ended.add(session_id)

    @rule(session_id=ids)
    def delete(self, session_id: SessionId) -> None:
        run(self.store.delete(session_id))
        self.ended.add(session_id)

    @rule(minutes=st.integers(0, 40))
    def pass_time(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @rule(subject=st.sampled_from(SUBJECTS), session_id=ids)
    def end_one(self, subject: str, session_id: SessionId) -> None:
        entry = self.store._entries.get(session_id)
        live = entry is not None and self.clock() < entry.expires_at
        mine = live and entry is not None and entry.subject == subject
        assert run(self.store.end_subject_session(subject, session_handle(session_id))) is mine
        if mine:
            self.ended.add(session_id)

    @rule(subject=st.sampled_from(SUBJECTS), keep=st.none() | ids)
    def end_subject(self, subject: str, keep: SessionId | None) -> None:
        before = {i.handle for i in run(self.store.list_subject(subject))}
        kept = None if keep is None else session_handle(keep)
        assert run(self.store.end_subject(subject, keep=keep)) == len(before - {kept})
        assert {i.handle for i in run(self.store.list_subject(subject))} <= {kept}

    @rule()
    def end_all(self) -> None:
        run(self.store.end_all())
        for subject in SUBJECTS:
            assert run(self.store.list_subject(subject)) == []

    @invariant()
    def index_matches_records(self) -> None:
        store, now = self.store, self.clock()
        indexed = {
            (subject, handle, session_id)
            for subject, handles in store._subjects.items()
            for handle, session_id in handles.items()
        }
        assert all(handles for handles in store._subjects.values())
        recorded = {
            (entry.subject, entry.handle, session_id)
            for session_id, entry in store._entries.items()
            if entry.subject is not None
        }
        assert indexed == recorded
        assert all(h == session_handle(i) for _, h, i in indexed)
        for subject in SUBJECTS:
            listed = run(store.list_subject(subject))
            live = sorted(
                (e.created_at, session_handle(i))
                for i, e in store._entries.items()
                if e.subject == subject and now < e.expires_at
            )
            assert sorted((i.created_at, i.handle) for i in listed) == live
            assert [i.created_at for i in listed] == sorted(i.created_at for i in listed)
            assert len({i.created_at for i in listed}) <= CAP  # sessions, by their start
        assert all(store._entries.get(i) is None for i in self.ended)


MemoryIndexMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30)
TestMemoryIndex = MemoryIndexMachine.TestCase
