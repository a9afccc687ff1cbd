"""Where prototype_middleware.py saves over typed-sessions' middleware (issue 13).

Counts, in callgrind instructions per call (the difference of N2 and N1 calls, over
N2 - N1), the parts of one counter request in each: the cookie's verification, and the
store's work (ours: ``MemoryStore.load`` then ``save`` of ``used_with_data``; the
prototype: its store's load and save with the JSON decode and encode); and variants of
the whole prototype request with one of its shortcuts taken away. ``--calls`` lists the
Python and C calls one request makes in each (``sys.setprofile``), by function.

Run from this folder: ``python prototype_parts.py [N1 N2] [--only TEXT]`` or ``--calls``
(needs valgrind; ``--only``: the parts and variants whose name holds TEXT).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import bench_middleware as bm
from harness import callgrind_count
from prototype_middleware import _SKEW, ProtoStore, PrototypeMiddleware, Record, _new, _scan, encode
from typed_sessions import Keyring, Ok, SessionId, parse_cookie, verify_session_token
from typed_sessions.adapters.middleware import SessionMiddleware, session_middleware
from typed_sessions.adapters.outcome import plan_write, snapshot_of
from typed_sessions.adapters.session_data import SessionData
from typed_sessions.core.session import used_with_data
from typed_sessions.stores.memory import MemoryStore


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never suspends (the memory stores' calls)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("suspended")  # pragma: no cover


def ours() -> tuple[SessionMiddleware, MemoryStore[dict[str, Any]]]:
    store = MemoryStore(dict[str, Any])
    keys = Keyring.from_secrets(bm.SECRET)
    return session_middleware(bm.counter_app, store=store, keys=keys), store


def proto(**options: Any) -> PrototypeMiddleware:
    keys = Keyring.from_secrets(bm.SECRET)
    return PrototypeMiddleware(bm.counter_app, store=ProtoStore(), keys=keys, **options)


class NoCache(PrototypeMiddleware):
    """The prototype verifying every token's HMAC (both token caches emptied each time)."""

    def verify(self, header: bytes, now: int) -> SessionId | None:
        found = super().verify(header, now)
        self.verified.clear()
        self.keys.clear_token_cache()
        return found


class LibraryCache(PrototypeMiddleware):
    """The prototype with the library's cached public path instead of its own cache:
    ``verify_session_token`` with an aware datetime and a ``Result``, every request."""

    def verify(self, header: bytes, now: int) -> SessionId | None:
        token = parse_cookie(header.decode("latin-1"), self.cookie_name)
        if token is None:
            return None
        moment = datetime.fromtimestamp(now, UTC)
        checked = verify_session_token(
            token, self.keys, now=moment, max_age=self._max_age, clock_skew=_SKEW
        )
        return checked.value if isinstance(checked, Ok) else None


def first_cookie(app: Any) -> bytes:
    """The cookie header a client of ``app`` sends after its first counter request."""
    jar: dict[str, str] = {}

    async def go() -> None:
        start: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.append(message)

        async def receive() -> dict[str, Any]:  # pragma: no cover
            return {}

        await app({"type": "http", "headers": []}, receive, send)
        for name, value in start[0]["headers"]:
            if name == b"set-cookie":
                key, _, rest = value.decode().partition("=")
                jar[key] = rest.split(";", 1)[0]

    asyncio.run(go())
    return "; ".join(f"{k}={v}" for k, v in jar.items()).encode()


def part(name: str) -> Callable[[], object]:
    """One call of the part ``name`` of a counter request (see ``PARTS``)."""
    if name.startswith("ours"):
        app, store = ours()
        header = first_cookie(app)
        settings = app.settings
        if name == "ours: clock + verify":
            return lambda: settings.verify_cookie(header, settings.moment()[1] / 1e6)
        now = datetime.now(UTC)
        session_id = settings.verify_cookie(header, now.timestamp())[0]
        assert session_id is not None
        expiry = settings.expiry
        if name == "ours: load":
            return lambda: run(store.load(session_id))
        record = run(store.load(session_id))
        if name == "ours: hand-out, bump, plan_write":

            def change() -> None:
                data = SessionData(record.data)
                snapshot = snapshot_of(record.data)
                data.track()
                bm.bump(data)
                plan_write(record, data, snapshot, None, data, expiry=expiry, now=now)

            return change

        def load_save() -> None:
            loaded = run(store.load(session_id))
            data = dict(loaded.data)
            data["test_counter"] += 1
            run(store.save(used_with_data(loaded, data, expiry, now=now)))

        return load_save
    app = proto()
    header = first_cookie(app)
    if name == "proto: clock + verify":
        return lambda: app.verify(header, int(time.time()))
    now = int(time.time())
    session_id = app.verify(header, now)
    assert session_id is not None
    store = app.store
    if name == "proto: load":
        return lambda: _scan(run(store.load(session_id, now)).text, 0)[0]
    record = run(store.load(session_id, now))
    if name == "proto: hand-out, bump, plan_write":

        def change() -> None:
            data = _scan(record.text, 0)[0]  # counted in "load" too: subtract it
            bm.bump(data)
            text = encode(data)
            deadline = min(now + app.idle, record.created + app.absolute)
            if text != record.text or deadline - record.expires >= app.step:
                _new(Record, (record.version + 1, record.created, deadline, text))

        return change

    def load_save() -> None:
        loaded = run(store.load(session_id, now))
        data = _scan(loaded.text, 0)[0]
        data["test_counter"] += 1
        new = _new(Record, (loaded.version + 1, loaded.created, loaded.expires, encode(data)))
        run(store.save(session_id, new, now))

    return load_save


def floor(wrap: bool) -> Any:
    """The no-session app sent a cookie of our token's size (set on its first response);
    with ``wrap``, under a middleware that only wraps ``send`` (as every one here does)."""
    first = [True]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def wrapped(message: Any) -> None:
            if first[0] and message["type"] == "http.response.start":
                first[0] = False
                cookie = b"__Host-session=" + b"x" * 127 + b"; Path=/"
                message["headers"] = [*message.get("headers", ()), (b"set-cookie", cookie)]
            await send(message)

        await bm.counter_app(scope, receive, wrapped if wrap or first[0] else send)

    return app


VARIANTS: dict[str, Callable[[], Any]] = {
    "floor: no sessions, same cookie": lambda: floor(False),
    "floor: the same, send wrapped": lambda: floor(True),
    "prototype": lambda: proto(),
    "prototype, no token cache (HMAC every request)": lambda: NoCache(
        bm.counter_app, store=ProtoStore(), keys=Keyring.from_secrets(bm.SECRET)
    ),
    "prototype, library's cached verify_session_token": lambda: LibraryCache(
        bm.counter_app, store=ProtoStore(), keys=Keyring.from_secrets(bm.SECRET)
    ),
}
PARTS = tuple(
    f"{who}: {what}"
    for who in ("ours", "proto")
    for what in ("clock + verify", "load", "hand-out, bump, plan_write", "load+save")
)


def child(kind: str, name: str, n: int) -> None:
    if kind == "part":
        call = part(name)
        for _ in range(n):
            call()
        return
    driver = bm.raw_driver(VARIANTS[name]() if name in VARIANTS else bm.counter_app)

    async def many() -> None:
        for _ in range(n):
            await driver()

    asyncio.run(many())


def calls_of(app: Any, n: int = 100) -> Counter[str]:
    """The calls ``n`` counter requests to ``app`` make (after 50 unwatched ones)."""
    driver = bm.raw_driver(app)
    seen: Counter[str] = Counter()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            seen[f"{code.co_qualname} ({code.co_filename.rsplit('/', 1)[-1]})"] += 1
        elif event == "c_call":
            seen[f"{getattr(arg, '__qualname__', arg)} [C]"] += 1

    async def many(count: int, watched: bool) -> None:
        for _ in range(count):
            if watched:
                sys.setprofile(profile)
            await driver()
            sys.setprofile(None)

    asyncio.run(many(50, False))
    asyncio.run(many(n, True))
    return seen


def calls() -> None:
    """Calls per request of ours and the prototype, by function."""
    for label, app in {"typed-sessions": ours()[0], "prototype": proto()}.items():
        seen = calls_of(app)
        print(f"## {label}: {sum(seen.values()) / 100:.0f} calls per request (Python and C)")
        for fn, count in seen.most_common():
            print(f"  {count / 100:6.2f}  {fn}")


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    if "--calls" in sys.argv:
        calls()
        return
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else ""
    args = [a for a in sys.argv[1:] if a.isdigit()]
    low, high = (int(args[0]), int(args[1])) if args else (200, 1200)

    def per(kind: str, name: str) -> float:
        counts = [callgrind_count(__file__, "--child", kind, name, str(n)) for n in (low, high)]
        return (counts[1] - counts[0]) / (high - low)

    print(f"## instructions per call ({low} and {high} calls, callgrind)")
    for name in (p for p in PARTS if only in p):
        print(f"{name:<52} {per('part', name):>10,.0f}", flush=True)
    base = per("app", "no sessions")
    for name in (v for v in VARIANTS if only in v):
        print(f"{name:<52} {per('app', name) - base:>+10,.0f} over no sessions", flush=True)


if __name__ == "__main__":
    main()
