"""A worker's commits: one per session at a time, each keeping what it saved a moment.

The middleware hands every request's plan (see :meth:`SessionManager.outcome
<typed_sessions.SessionManager.outcome>`) to its :class:`Commits`, which carries it out
with :func:`~typed_sessions.adapters.commit.carry_out`. Commits of one session never race
each other in a worker (each sees the one before it, so a lost race costs one reload
instead of a storm of retries), and each keeps a copy of the record it saved for a moment
(see :class:`~typed_sessions.adapters.kept.KeptRecords`): a later commit of a request
that loaded an older version merges into it (or is refused) without a failed save and a
reload. While no other worker saves the session, its stale requests cost no store round
trip at their commit.
"""

from __future__ import annotations

from typed_sessions.adapters.commit import carry_out
from typed_sessions.adapters.kept import KeptRecords
from typed_sessions.adapters.manager import SessionManager
from typed_sessions.adapters.outcome import Outcome, Regenerate, Resave, Update
from typed_sessions.adapters.settings import SessionSettings
from typed_sessions.adapters.turns import Turns
from typed_sessions.core.clock import EPOCH
from typed_sessions.core.ids import SessionId
from typed_sessions.core.tuples import new_tuple

__all__ = ["Commits"]


class Commits:
    """The commits of one middleware (one worker): call it with a request's plan."""

    __slots__ = ("_instant", "_kept", "_lane", "_queue", "_settings")

    def __init__(self, settings: SessionSettings) -> None:
        """No commit under way, nothing kept."""
        self._settings = settings
        self._queue: Turns[SessionId] = Turns()  # one commit per session at a time
        self._kept = KeptRecords()  # the records its commits saved, for a moment
        self._lane = settings.instant_lane  # its saves never suspend, if there is one

    def saved_now(self, plan: Outcome | Resave) -> bool:
        """Whether ``plan`` is saved at once, without a coroutine: a :class:`Resave`
        through an instant lane, with no commit of its session under way or kept (no
        other task can run during the save, so there is nobody to wait for), and no
        conflict. ``False``: nothing was written; carry the plan out with a call.

        Raises:
            StoreError: the lane refused the save (for example, too large).
        """
        if type(plan) is not Resave:
            return False
        key, stored, _, text, _, _, last, expires = plan  # (one unpack)
        lane, kept = self._lane, self._kept.records
        if lane is None or key in self._queue.held or (kept and key in kept):
            return False
        data = None if text is None else text.encode()
        return lane.save_record_now(key, stored, data, last, expires) is None

    async def __call__(self, plan: Outcome | Resave, manager: SessionManager) -> str | None:
        """Carry ``plan`` out; return the ``Set-Cookie`` value to send, if any. (Try a
        :class:`Resave` with :meth:`saved_now` first: this call does not.)

        Raises:
            StoreError: as :func:`carry_out`.
            ConcurrentChangeError: likewise.
        """
        key: SessionId | None
        if type(plan) is Resave:
            key = plan.session_id
            outcome: Outcome = new_tuple(Outcome, (plan, None, False, EPOCH))
        else:
            assert type(plan) is Outcome
            outcome = plan
            write = outcome.write
            key = write.record.id if type(write) is Update or type(write) is Regenerate else None
        settings = self._settings
        if key is None or manager.has_turn:  # (a turn of the session's: nobody to race)
            settled = await carry_out(outcome, settings)
        else:
            queue, kept_records = self._queue, self._kept
            if not queue.take_free(key):  # the common case: nobody to wait for
                await queue.take(key)
            try:
                newest = kept_records.get(key) if kept_records.records else None
                settled = await carry_out(outcome, settings, newest)
            finally:  # a refused or failed commit changed nothing: what was kept stays
                queue.give_back(key)  # to the next waiter, if any: it resumes after this
            if settled.saved is not None:  # for the commits of requests that loaded before
                kept_records.keep(key, settled.saved, settled.text)
            elif kept_records.records:  # saved as another record, or ended: found out later
                kept_records.drop(key)
        if outcome.delete is not None and self._kept.records:  # ended here: not kept
            self._kept.drop(outcome.delete)
        manager.settle(settled.session_id)
        return settled.cookie
