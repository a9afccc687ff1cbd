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

pytestmark = pytest.mark.heavy

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


def test_twenty_parallel_increments_store_exactly_the_acknowledged_ones(demo_url: str) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Chromium is not installed (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(demo_url)  # starts the middleware session (a visit)
            for _ in range(3):
                page.click("#burst")
                page.wait_for_selector("#stored")
                acked = int(page.inner_text("#acked"))
                refused = int(page.inner_text("#refused"))
                assert acked + refused == 20
                assert int(page.inner_text("#stored")) == acked
                assert acked >= 1
                page.evaluate("document.getElementById('burst-result').innerHTML = ''")
        finally:
            browser.close()


def test_your_sessions_page_signs_another_browser_out(demo_url: str) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Chromium is not installed (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            pages = [browser.new_context().new_page() for _ in range(2)]
            for page in pages:  # two "devices" of one user
                page.goto(demo_url)
                page.fill("#name", "Ada Lovelace")
                page.click("#login")
                page.wait_for_selector("#who")
            first, second = pages
            first.click("#sessions-link")
            first.wait_for_selector("#sessions")
            assert first.locator("tr.session").count() == 2
            assert first.locator("tr.session.current").count() == 1
            first.click("#end-others")
            first.wait_for_selector("#sessions")
            assert first.locator("tr.session").count() == 1
            second.reload()
            assert "You are not signed in" in second.content()
            first.goto(demo_url)
            assert first.inner_text("#who") == "Signed in as Ada Lovelace."
        finally:
            browser.close()
