"""Not a benchmark: builds typed-sessions with its hot modules compiled by mypyc (issue 13).

The prototype of a C accelerator that nobody writes by hand: mypyc compiles our own
``mypy --strict`` modules, unchanged, into C extensions. The copy goes to ``TARGET``
(default ``benchmarks/compiled-src``, ignored by git); put it first on the path to
measure it:

    ../.venv/bin/python compiled.py              # the project's venv has mypy (and mypyc)
    PYTHONPATH=compiled-src ../.bench/bin/python instructions.py \\
        --only "typed-sessions, memory" --scenario "raw counter"

Both venvs must run the same Python (the extensions are built for the one running this).
Compiled classes are native: code that subclasses them, or sets attributes they do not
declare, fails (some of our tests do), so this is a measurement, not a release build.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

MODULES = (
    "adapters/middleware.py",
    "adapters/manager.py",
    "adapters/outcome.py",
    "adapters/loaded.py",
    "adapters/commits.py",
    "adapters/commit.py",
    "adapters/headers.py",
    "adapters/settings.py",
    "adapters/turns.py",
    "adapters/kept.py",
    "stores/memory_records.py",
    "stores/memory_table.py",
    "core/jsondata.py",
)
"""The modules a counter request runs through that mypyc compiles as they are (the memory
store's lane is a mixin, and ``SessionData`` a ``dict`` subclass: both stay Python)."""

SOURCE = Path(__file__).resolve().parent.parent / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("target", nargs="?", default=Path(__file__).parent / "compiled-src")
    target = Path(parser.parse_args().target)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(SOURCE, target, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    modules = [f"typed_sessions/{module}" for module in MODULES]
    subprocess.run(
        [sys.executable, "-m", "mypyc", *modules],
        cwd=target, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    built = sorted(path.name for path in (target / "typed_sessions").rglob("*.so"))
    print(f"{len(built)} extensions in {target}; measure with PYTHONPATH={target}")


if __name__ == "__main__":
    main()
