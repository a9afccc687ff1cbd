"""SQL databases for tests: the shared servers' URLs, and a PostgreSQL a test can stop.

PostgreSQL comes from ``TYPED_SESSIONS_POSTGRES_URL`` (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``, trust auth), MariaDB from
``TYPED_SESSIONS_MARIADB_URL`` (default ``mysql+aiomysql://root@127.0.0.1:3306/test``).
When one cannot be reached the test is skipped with the reason; under ``CI=true`` it
fails instead. Each test gets a table of its own (a unique name), dropped afterwards.

:class:`PostgresServer` runs a throwaway server (``initdb`` and ``pg_ctl``, found on
``PATH`` or under ``/usr/lib/postgresql/*/bin``) on a spare loopback port in a temporary
directory. PostgreSQL refuses to run as root; as root the server runs as the
``postgres`` user (through ``runuser``), which owns the temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from .redis_server import free_port, unavailable

POSTGRES_URL_ENV = "TYPED_SESSIONS_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
MARIADB_URL_ENV = "TYPED_SESSIONS_MARIADB_URL"
DEFAULT_MARIADB_URL = "mysql+aiomysql://root@127.0.0.1:3306/test"


def postgres_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)


def mariadb_url() -> str:
    return os.environ.get(MARIADB_URL_ENV, DEFAULT_MARIADB_URL)


@functools.cache
def _reach(url: str) -> str | None:
    """Return why the database at ``url`` cannot be used, or ``None`` when it answers."""

    async def probe() -> None:
        engine = create_async_engine(url, connect_args=_connect_timeout(url))
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    def run() -> None:  # in a thread of its own: tests call this inside an event loop
        asyncio.run(asyncio.wait_for(probe(), 5))

    try:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(run).result()
    except Exception as exc:  # any failure to connect is a reason to skip
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None


def _connect_timeout(url: str) -> dict[str, object]:
    if url.startswith("postgresql"):
        return {"timeout": 3}
    if url.startswith("mysql"):
        return {"connect_timeout": 3}
    return {}


def require(url: str, env: str) -> str:
    """Return ``url``, or skip (fail under CI) when its database does not answer."""
    reason = _reach(url)
    if reason is not None:
        unavailable(f"the database at {url} is unreachable ({reason}); set {env}")
    return url


def require_postgres() -> str:
    return require(postgres_url(), POSTGRES_URL_ENV)


def require_mariadb() -> str:
    return require(mariadb_url(), MARIADB_URL_ENV)


SQL_KINDS = ["postgresql", "mariadb", "sqlite"]
"""The databases a test parametrised over SQL runs on (see :func:`sql_url`)."""


def sql_url(kind: str, folder: Path | str) -> str:
    """The URL of the ``kind`` database (skip when unreachable; SQLite: a file in
    ``folder``)."""
    if kind == "postgresql":
        return require_postgres()
    if kind == "mariadb":
        return require_mariadb()
    return f"sqlite+aiosqlite:///{folder}/sessions.db"


def unique_table() -> str:
    """A table name no other test (or test run) uses."""
    return f"ts_test_{uuid.uuid4().hex[:16]}"


def _postgres_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A PostgreSQL server of the test's own on a spare loopback port: stop it, start it.

    Raises:
        RuntimeError: it cannot be set up (no ``initdb``, no non-root user to run as).
    """

    def __init__(self) -> None:
        initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError("initdb/pg_ctl are not installed (PostgreSQL server binaries)")
        self.pg_ctl = pg_ctl
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="typed-sessions-pg-")
        self.data = Path(self._dir.name) / "data"
        self.user: str | None = None
        if os.geteuid() == 0:  # PostgreSQL never runs as root
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise RuntimeError("running as root and there is no 'postgres' user") from exc
            self.user = "postgres"
            os.chown(self._dir.name, owner.pw_uid, owner.pw_gid)
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        if self.user is not None:
            command = ("runuser", "-u", self.user, "--", *command)
        done = subprocess.run(command, check=False, capture_output=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{command} failed: {(done.stdout + done.stderr)[-800:]!r}")

    def start(self) -> None:
        """Start (or restart, same port and data) and wait until it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        log = str(Path(self._dir.name) / "server.log")
        self._run(self.pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: at once, connections cut mid-call)."""
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def cleanup(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
            self.stop()
        self._dir.cleanup()


@contextlib.contextmanager
def postgres_server() -> Generator[PostgresServer, None, None]:
    """A started :class:`PostgresServer`, stopped and removed afterwards (skip if
    impossible; fail under CI)."""
    try:
        server = PostgresServer()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        unavailable(f"could not set up a test PostgreSQL server: {exc}")
    try:
        try:
            server.start()
        except (RuntimeError, subprocess.SubprocessError) as exc:
            unavailable(f"could not start a test PostgreSQL server: {exc}")
        yield server
    finally:
        server.cleanup()
