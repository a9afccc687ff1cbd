"""The code of the two seed pages, with only their import lines pointed at the shims.

The pages live in ``shared/seeds/`` beside the repository (``../shared`` of a clone; a
worktree's parent holds it too), or where ``TYPED_SESSIONS_SEEDS`` says. Without them the
tests skip, and fail under ``CI=true``. The pages are plain text: a code block is found by
its first line and runs as far as the text still compiles as Python.

Also the factory two uvicorn workers run: both pages' apps on Redis
(``TYPED_SESSIONS_REDIS_URL``, ``TYPED_SESSIONS_PREFIX``), page 2's under ``/authx``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

ROOT = Path(__file__).resolve().parent.parent
SEEDS_ENV = "TYPED_SESSIONS_SEEDS"

PAGE1_IMPORTS = {
    re.compile(r"^from fastapi_sessions\.", re.MULTILINE): (
        "from typed_sessions.compat.fastapi_sessions."
    ),
}
PAGE2_IMPORTS = {
    re.compile(r"^from authx\._internal import", re.MULTILINE): (
        "from typed_sessions.compat.authx_extra import"
    ),
    re.compile(r"^from authx_extra\.session import", re.MULTILINE): (
        "from typed_sessions.compat.authx_extra.session import"
    ),
}
# The one more line that moves each page's sessions to Redis.
PAGE1_ON_REDIS = {
    re.compile(r"^backend = InMemoryBackend\[UUID, SessionData\]\(\)$", re.MULTILINE): (
        "backend = RedisBackend[UUID, SessionData](REDIS_URL, prefix=PREFIX)"
    ),
}
PAGE2_ON_REDIS = {
    re.compile(r"^    store=MemoryIO\(\),$", re.MULTILINE): (
        "    store=RedisStore.from_url(REDIS_URL, dict[str, Any], prefix=PREFIX),"
    ),
}


def seeds_dir() -> Path:
    """The seed pages' directory; skip (fail under ``CI=true``) when there is none."""
    configured = os.environ.get(SEEDS_ENV)
    candidates = [Path(configured)] if configured else []
    candidates += [parent / "shared" / "seeds" for parent in ROOT.parents]
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("00[12]_*.txt")):
            return candidate
    reason = f"the seed pages are not in ../shared/seeds (or {SEEDS_ENV})"
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def page_text(number: int) -> str:
    (path,) = seeds_dir().glob(f"{number:03d}_*.txt")
    return path.read_text()


def code_block(text: str, first_line: str, *, last: bool = False) -> str:
    """The block starting at ``first_line`` (its last occurrence with ``last``), up to the
    end of the longest run of lines that compiles."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line == first_line]
    assert starts, f"no line {first_line!r} on the page"
    start = starts[-1] if last else starts[0]
    for end in range(len(lines), start, -1):
        code = "\n".join(lines[start:end]).rstrip() + "\n"
        try:
            compile(code, "<page>", "exec")
        except SyntaxError:
            continue
        return code
    raise AssertionError(f"no code compiles from {first_line!r}")


class Rewritten(NamedTuple):
    code: str
    changed: list[tuple[str, str]]  # (line before, line after)


def rewrite(code: str, replacements: Mapping[re.Pattern[str], str]) -> Rewritten:
    """Apply ``replacements`` (each must match); return the code and the changed lines."""
    changed_code = code
    for pattern, replacement in replacements.items():
        changed_code, count = pattern.subn(replacement, changed_code)
        assert count >= 1, f"{pattern.pattern!r} matches nothing on the page"
    before, after = code.splitlines(), changed_code.splitlines()
    assert len(before) == len(after)
    return Rewritten(changed_code, [(b, a) for b, a in zip(before, after, strict=True) if b != a])


def page1_code() -> str:
    """fastapi-sessions' complete app ("Putting it all together"), as printed."""
    return code_block(page_text(1), "from pydantic import BaseModel", last=True)


def page2_code() -> str:
    """authx-extra's usage block, as printed."""
    return code_block(page_text(2), "from fastapi import FastAPI, Request")


def run(code: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute page code as a module of its own; return its namespace."""
    names: dict[str, Any] = {"__name__": "seed_page", **(namespace or {})}
    exec(compile(code, "<seed page>", "exec"), names)  # noqa: S102 - the seed page, our test input
    return names


def page1_on_redis(url: str, prefix: str) -> FastAPI:
    code = rewrite(rewrite(page1_code(), PAGE1_IMPORTS).code, PAGE1_ON_REDIS).code
    from typed_sessions.compat.fastapi_sessions import RedisBackend

    app: FastAPI = run(code, {"RedisBackend": RedisBackend, "REDIS_URL": url, "PREFIX": prefix})[
        "app"
    ]
    return app


def page2_on_redis(url: str, prefix: str) -> FastAPI:
    code = rewrite(rewrite(page2_code(), PAGE2_IMPORTS).code, PAGE2_ON_REDIS).code
    from typed_sessions import RedisStore

    names = {"RedisStore": RedisStore, "Any": Any, "REDIS_URL": url, "PREFIX": prefix}
    app: FastAPI = run(code, names)["app"]
    return app


def _tag_worker(app: Callable[[Scope, Receive, Send], Any]) -> Callable[..., Any]:
    """Wrap ``app`` so each response says which process answered (``x-worker``)."""
    pid = str(os.getpid()).encode()

    async def tagged(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-worker", pid)]
            await send(message)

        await app(scope, receive, send_tagged if scope["type"] == "http" else send)

    return tagged


def pages_on_redis_from_env() -> Callable[..., Any]:
    """For ``uvicorn --factory``: page 1's app, page 2's under ``/authx``, on one Redis."""
    url = os.environ["TYPED_SESSIONS_REDIS_URL"]
    prefix = os.environ["TYPED_SESSIONS_PREFIX"]
    app = page1_on_redis(url, prefix + "page1:")
    app.mount("/authx", page2_on_redis(url, prefix + "page2:"))
    return _tag_worker(app)
