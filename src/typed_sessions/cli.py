"""The command line: ``python -m typed_sessions keygen`` and ``python -m typed_sessions demo``."""

from __future__ import annotations

import argparse
import importlib.util
import secrets
import sys
from collections.abc import Sequence

__all__ = ["main"]

_MOST_BYTES = 1024  # a secret longer than this protects no better, and costs memory

_KEYGEN_HELP = """\
Print a fresh random secret (256 bits, URL-safe text) for Keyring.from_secrets.

Keep secrets out of source control: read them from the environment, e.g.
    older = [os.environ["SESSION_SECRET_OLD"]] if "SESSION_SECRET_OLD" in os.environ else []
    keys = Keyring.from_secrets(os.environ["SESSION_SECRET"], *older)

Rotating without logging anybody out:
  1. Generate a new secret and deploy it FIRST, with the current one second:
         Keyring.from_secrets(new, current)
     New tokens are signed with `new`; tokens signed with `current` still verify.
  2. Wait until every token signed with `current` has expired (the Expiry's
     absolute lifetime), then deploy with `current` removed:
         Keyring.from_secrets(new)
  To revoke a leaked secret at once, skip the wait: everyone signed with it is
  logged out, which is what you want.
"""


def _keygen(args: argparse.Namespace) -> int:
    for _ in range(args.count):
        print(secrets.token_urlsafe(args.bytes))
    return 0


def _demo(args: argparse.Namespace) -> int:
    needs: list[tuple[str, str, str]] = []  # the store's extra first: it holds the demo's
    if args.redis is not None:
        needs.append(("redis", "--redis needs redis-py", "demo-redis"))
    if args.sql is not None:
        needs.append(("sqlalchemy", "--sql needs SQLAlchemy", "demo-sql"))
    needs.append(("uvicorn", "the demo needs uvicorn", "demo"))
    for module, what, extra in needs:
        if importlib.util.find_spec(module) is None:
            print(f"{what}: pip install 'typed-sessions[{extra}]'", file=sys.stderr)
            return 2
    from typed_sessions.demo import serve  # imported here: it needs uvicorn

    return serve(host="127.0.0.1", port=args.port, redis_url=args.redis, sql_url=args.sql)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is from 1 to 65535, not {port}")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m typed_sessions")
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser(
        "keygen",
        help="print a fresh secret for Keyring.from_secrets",
        description=_KEYGEN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    keygen.add_argument("--bytes", type=int, default=32, help="random bytes (default 32)")
    keygen.add_argument("--count", type=int, default=1, help="how many secrets (default 1)")
    keygen.set_defaults(run=_keygen)
    demo = commands.add_parser(
        "demo",
        help="serve the demo app on 127.0.0.1",
        description="Serve a small app showing typed-sessions in a browser (127.0.0.1 only).",
    )
    demo.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    stores = demo.add_mutually_exclusive_group()
    stores.add_argument("--redis", metavar="URL", default=None, help="use Redis at URL")
    stores.add_argument(
        "--sql",
        metavar="URL",
        default=None,
        help="use the SQL database at URL (e.g. sqlite+aiosqlite:///demo.db)",
    )
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "keygen" and not 32 <= args.bytes <= _MOST_BYTES:
        print(f"refusing: use from 32 to {_MOST_BYTES} bytes", file=sys.stderr)
        return 2
    if args.command == "keygen" and args.count < 1:  # `SECRET=$(keygen --count 0)` would be ""
        print("refusing: --count must be at least 1", file=sys.stderr)
        return 2
    code: int = args.run(args)
    return code
