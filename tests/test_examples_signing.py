from __future__ import annotations

from examples.signing_quickstart import main


def test_signing_quickstart() -> None:
    assert main()[1:] == [
        "fresh: ok, same id: True",
        "tampered: refused (bad_signature)",
        "two hours later: refused (expired)",
    ]
