"""The README's example is examples/readme_app.py, verbatim, and it works."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

from examples import readme_app
from typed_sessions import StoreUnavailableError

ROOT = Path(__file__).resolve().parent.parent


def test_readme_shows_the_example_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert (ROOT / "examples" / "readme_app.py").read_text() in blocks


def test_readme_prompt_session_runs() -> None:
    """A newcomer can sign and verify from a Python prompt, as the README shows."""
    import doctest

    readme = (ROOT / "README.md").read_text()
    (session,) = re.findall(r"```pycon\n(.*?)```", readme, flags=re.DOTALL)
    test = doctest.DocTestParser().get_doctest(session, {}, "README", "README.md", 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_readme_commands_are_the_ci_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = re.search(r"\*\*Test it\*\*.*?```bash\n(.*?)\n```", readme, flags=re.DOTALL)
    assert test_command is not None
    assert test_command.group(1) in ci


@pytest.mark.anyio
async def test_readme_app() -> None:
    transport = httpx.ASGITransport(app=readme_app.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        assert (await client.get("/whoami")).status_code == 401
        assert (await client.post("/login/ada")).json() == "hello ada"
        assert (await client.get("/whoami")).json() == {"name": "ada"}
        assert (await client.post("/logout")).json() == "bye"
        assert (await client.get("/whoami")).status_code == 401


@pytest.mark.anyio
async def test_readme_app_answers_503_while_the_store_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def down(*args: object) -> NoReturn:
        raise StoreUnavailableError("down")

    transport = httpx.ASGITransport(app=readme_app.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        assert (await client.post("/login/ada")).status_code == 200
        for method in ("load", "save", "delete"):
            monkeypatch.setattr(readme_app.store, method, down)
        assert (await client.post("/login/bob")).status_code == 503
        assert (await client.get("/whoami")).status_code == 503
        assert (await client.post("/logout")).status_code == 503


def test_docs_home_shows_the_readme_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    home = (ROOT / "docs" / "index.md").read_text()
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", readme)
    assert len(commands) == 2
    assert all(command in home for command in commands)
