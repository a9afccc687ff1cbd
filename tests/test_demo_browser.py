"""The demo in a real browser: headless Chromium signs in, sees the name, signs out.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and the ``playwright`` client from
the test extra, driving the system browser. Skipped when Chromium is absent, except
under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

CHROMIUM = os.environ.get("TYPED_SESSIONS_CHROMIUM") or shutil.which("chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def demo_url() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "typed_sessions", "demo", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    _, err = process.communicate(timeout=5)
                    pytest.fail(f"the demo did not start: {err.decode(errors='replace')}")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_sign_in_and_out_in_chromium(demo_url: str) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Chromium is not installed (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(demo_url)
            assert "You are not signed in" in page.content()
            page.fill("#name", "Grace Hopper")
            page.click("#login")
            page.wait_for_selector("#who")
            assert page.inner_text("#who") == "Signed in as Grace Hopper."
            first = page.inner_text("#sid")
            page.click("#rotate")
            page.wait_for_selector("#who")
            assert page.inner_text("#sid") != first
            assert page.inner_text("#who") == "Signed in as Grace Hopper."
            page.click("#logout")
            page.wait_for_selector("#login")
            assert "You are not signed in" in page.content()
            assert "(middleware session): 4" in page.inner_text("#visits")
            cookies = {c.get("name") for c in page.context.cookies()}
            assert "demo_login" not in cookies
            assert "demo_visits" in cookies
        finally:
            browser.close()
