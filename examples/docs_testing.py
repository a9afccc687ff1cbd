"""Testing your own app with FastAPI's TestClient (pytest collects ``test_*`` functions).

The session cookie is ``Secure`` (and named ``__Host-session``), so a client sends it back
only over HTTPS. TestClient talks to ``http://testserver`` by default: there, a login
seems to work and the next request arrives without its session (401). Give the client an
``https://`` base URL; nothing is encrypted, the app is still called in-process.
"""

from fastapi.testclient import TestClient

from examples.readme_app import app  # your app


def test_login_then_whoami() -> None:
    client = TestClient(app, base_url="https://testserver")
    assert client.post("/login/ada").json() == "hello ada"
    assert "__Host-session" in client.cookies
    assert client.get("/whoami").json() == {"name": "ada"}


def test_plain_http_loses_the_secure_cookie() -> None:
    client = TestClient(app)  # http://testserver
    assert client.post("/login/ada").status_code == 200  # the cookie was set...
    assert client.get("/whoami").status_code == 401  # ...and not sent back over HTTP
