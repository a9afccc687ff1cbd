"""The counter route over uvicorn and wrk on Redis: typed-sessions vs starsessions.

Issue 13's end-to-end figure. Each contender runs in a uvicorn process of its own (one
worker), all on the same Redis, interleaved in one run (A, B, A, B, ...), driven by
``wrk`` with 64 connections in two shapes:

- 64 sessions: each request carries the next of 64 session cookies (``cookies.lua``), so
  the requests in flight belong to different sessions, as on a real site;
- one session: every request carries the same cookie (typed-sessions answers a stale
  read-modify-write with 409; starsessions' last writer wins; both are counted).

Beside requests per second (noisy on a shared machine) each run reports the server
process's CPU time per request (user + system, from ``/proc``): what one worker can
serve at most is its inverse, however busy the machine is.

With ``--lean``, also typed-sessions on the prototype client of ``lean_redis.py``.

Run from this folder: ``python bench_redis_wrk.py [rounds] [seconds] [--lean]`` (needs ``wrk``, a
Redis server, the ``bench`` extra). Target (issue 13): typed-sessions at least 1.5x
starsessions' requests per second in both shapes. The same route without sessions is the
ceiling: no session library can make a request cheaper than no sessions at all.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_redis_shared import session_cookie, start

HERE = Path(__file__).resolve().parent
CONTENDERS = ("typed-sessions", "starsessions", "no sessions")
CONNECTIONS = 64
SESSIONS = 64


def cookie(name: str, base: str) -> str:
    """A new session's cookie (the route without sessions gets a cookie of the same size)."""
    if name == "no sessions":
        return "session=" + "x" * 120
    return session_cookie(base)


def wrk(base: str, cookies: Path, seconds: int) -> tuple[float, dict[int, int]]:
    done = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(HERE / "cookies.lua"),
         base + "/session_test", "--", str(cookies)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if found is None:  # pragma: no cover - wrk failed
        raise RuntimeError(done.stdout + done.stderr)
    statuses = {int(s): int(n) for s, n in re.findall(r"STATUS (\d+) (\d+)", done.stdout)}
    return float(found.group(1)), statuses


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    args = [int(a) for a in sys.argv[1:] if not a.startswith("--")][:2]
    rounds, seconds = (args + [3, 5][len(args) :])[:2]
    lean = ("typed-sessions, lean client",) if "--lean" in sys.argv else ()
    servers = {name: start(name) for name in CONTENDERS + lean}
    shapes = {"64 sessions": SESSIONS, "one session": 1}
    rates: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    statuses: dict[tuple[str, str], dict[int, int]] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            files: dict[tuple[str, str], Path] = {}
            for name, (_, base) in servers.items():
                for shape, count in shapes.items():
                    path = files[name, shape] = Path(folder, f"{name}-{count}.txt")
                    made = [cookie(name, base) for _ in range(count)]
                    path.write_text("\n".join(made) + "\n")
            for _ in range(rounds):
                for shape in shapes:
                    for name, (process, base) in servers.items():
                        before = cpu_seconds(process.pid)
                        rate, counted = wrk(base, files[name, shape], seconds)
                        spent = cpu_seconds(process.pid) - before
                        rates.setdefault((name, shape), []).append(rate)
                        per = spent / max(rate * seconds, 1)
                        cpu.setdefault((name, shape), []).append(per)
                        total = statuses.setdefault((name, shape), {})
                        for status, n in counted.items():
                            total[status] = total.get(status, 0) + n
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait()
        import asyncio

        import bench_redis

        asyncio.run(bench_redis.cleanup())
    print(f"## counter route, uvicorn (1 worker) + wrk, {CONNECTIONS} connections, Redis")
    print("| shape | contender | requests/s (each round) | median | CPU us/request | statuses |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (name, shape), values in rates.items():
        each = ", ".join(f"{v:,.0f}" for v in values)
        codes = ", ".join(f"{s}: {n}" for s, n in sorted(statuses[name, shape].items()))
        per = statistics.median(cpu[name, shape]) * 1e6
        rate = statistics.median(values)
        print(f"| {shape} | {name} | {each} | {rate:,.0f} | {per:,.0f} | {codes} |")
    for shape in shapes:
        ours, star = rates["typed-sessions", shape], rates["starsessions", shape]
        bare = rates["no sessions", shape]
        ceiling = statistics.median([a / b for a, b in zip(bare, star, strict=True)])
        print(f"{shape}: no sessions / starsessions median {ceiling:.2f}x (the ceiling)")
        ratios = [a / b for a, b in zip(ours, star, strict=True)]
        each = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"{shape}: typed-sessions / starsessions per round {each};"
              f" median {statistics.median(ratios):.2f}x (target >= 1.5)")  # fmt: skip
        by_cpu = statistics.median(cpu["starsessions", shape]) / statistics.median(
            cpu["typed-sessions", shape]
        )
        print(f"{shape}: starsessions / typed-sessions CPU per request {by_cpu:.2f}x")
        if lean:
            fast = rates[lean[0], shape]
            ratio = statistics.median([a / b for a, b in zip(fast, star, strict=True)])
            by_cpu = statistics.median(cpu["starsessions", shape]) / statistics.median(
                cpu[lean[0], shape]
            )
            print(f"{shape}: lean client / starsessions req/s {ratio:.2f}x, CPU {by_cpu:.2f}x")


if __name__ == "__main__":
    main()
