"""The middleware's common path at two revisions of this repository, in one run.

Exports ``src/typed_sessions`` of an older revision under another package name, then
times both middlewares around the same bare ASGI counter app, interleaved: a request
that reads and writes its session, and one that only reads it. Nothing is contended,
so this is the path every request takes.

Run from this folder: ``python compare_revisions.py REV`` (e.g. the commit before a
change). Issue 7's target: the common path at most 10% slower than before the change.
"""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from bench_middleware import counter_app, raw_driver
from harness import run_async, table

SECRET = "benchmark-secret-0123456789abcdef0123456789"
REPO = Path(__file__).resolve().parent.parent


def export(revision: str, name: str, into: Path) -> Any:
    """Import ``src/typed_sessions`` at ``revision`` as package ``name``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "src/typed_sessions"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / name
    (into / "src" / "typed_sessions").rename(package)
    for path in package.rglob("*.py"):
        path.write_text(path.read_text().replace("typed_sessions", name))
    sys.path.insert(0, str(into))
    return importlib.import_module(name)


async def read_app(scope: Any, receive: Any, send: Any) -> None:
    """Reads the session, changes nothing."""
    scope["state"]["session"].get_session().get("test_counter")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def contenders(module: Any, label: str) -> list[tuple[str, Any]]:
    keys = module.Keyring.from_secrets(SECRET)

    def build(app: Any) -> Any:
        store = module.MemoryStore(dict[str, Any])
        return module.session_middleware(app, store=store, keys=keys)

    writer = raw_driver(build(counter_app))
    reader_app = build(counter_app)
    reader = raw_driver(reader_app)
    primed = False

    async def prime_then_read() -> None:
        nonlocal primed
        await reader()
        if not primed:  # the first request made the session; from now on, only read
            primed = True
            reader_app.app = read_app

    return [(f"{label}: read + write", writer), (f"{label}: read only", prime_then_read)]


def main() -> None:
    revision = sys.argv[1] if len(sys.argv) > 1 else "HEAD~1"
    import typed_sessions as current

    with tempfile.TemporaryDirectory() as tmp:
        before = export(revision, "typed_sessions_before", Path(tmp))
        entries = contenders(before, f"at {revision}") + contenders(current, "now")
        medians = run_async(entries, rounds=40, batch=300)
    print(table(f"middleware alone, {revision} vs now", medians, baseline=entries[0][0]))
    for kind in ("read + write", "read only"):
        old = medians[f"at {revision}: {kind}"]
        new = medians[f"now: {kind}"]
        print(f"{kind}: now / before = {new / old:.3f}")


if __name__ == "__main__":
    main()
