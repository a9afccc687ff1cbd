"""Cookie settings validation and Set-Cookie rendering."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from typed_sessions import CookieSettings, parse_cookie, render_clear_cookie, render_set_cookie


def test_secure_defaults() -> None:
    settings = CookieSettings()
    assert (settings.secure, settings.httponly, settings.samesite) == (True, True, "lax")
    header = render_set_cookie(settings, "tok")
    assert header == "__Host-session=tok; Path=/; HttpOnly; Secure; SameSite=lax"


def test_the_default_name_takes_the_host_prefix_whenever_the_settings_allow_it() -> None:
    assert CookieSettings().name == "__Host-session"
    assert CookieSettings(max_age=60, samesite="strict").name == "__Host-session"
    for plain in (
        CookieSettings(secure=False),
        CookieSettings(path="/app"),
        CookieSettings(domain="example.com"),
    ):
        assert plain.name == "typed_session"
    # replace() resolves the default name again, as a constructor call would.
    assert replace(CookieSettings(), secure=False).name == "typed_session"
    assert replace(CookieSettings(secure=False), secure=True).name == "__Host-session"
    # A name given explicitly is kept, and checked.
    assert CookieSettings(name="session").name == "session"
    assert replace(CookieSettings(name="sid"), secure=False).name == "sid"
    with pytest.raises(ValueError, match="__Host- cookie requires"):
        CookieSettings(name="__Host-session", secure=False)


def test_render_all_attributes() -> None:
    settings = CookieSettings(
        name="__Secure-sid", path="/app", domain="example.com", max_age=60, samesite="strict"
    )
    assert render_set_cookie(settings, "v") == (
        "__Secure-sid=v; Max-Age=60; Path=/app; Domain=example.com; HttpOnly; Secure; "
        "SameSite=strict"
    )


def test_clear_cookie_keeps_scope() -> None:
    settings = CookieSettings(name="sid", path="/app", domain=".example.com", samesite="none")
    header = render_clear_cookie(settings)
    assert header.startswith('sid=""; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; ')
    assert "Path=/app; Domain=.example.com; HttpOnly; Secure; SameSite=none" in header


def test_insecure_for_local_development() -> None:
    header = render_set_cookie(CookieSettings(secure=False, httponly=False), "v")
    assert header == "typed_session=v; Path=/; SameSite=lax"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "__Host-sid", "domain": "example.com"}, "__Host-"),
        ({"name": "__Host-sid", "path": "/app"}, "__Host-"),
        ({"name": "__Host-sid", "secure": False}, "__Host-"),
        ({"name": "__Secure-sid", "secure": False}, "__Secure-"),
        # Browsers match the prefixes in any case (RFC 6265bis), and reject such cookies.
        ({"name": "__host-sid", "secure": False}, "__Host-"),
        ({"name": "__HOST-sid", "domain": "example.com"}, "__Host-"),
        ({"name": "__secure-sid", "secure": False}, "__Secure-"),
        ({"samesite": "none", "secure": False}, "SameSite=None"),
        ({"samesite": "Lax"}, "samesite"),
        ({"samesite": "SameSiteEnum.lax"}, "samesite"),
        ({"name": "sid;"}, "cookie name"),
        ({"name": "s id"}, "cookie name"),
        ({"name": "sid\r\nSet-Cookie: x=y"}, "cookie name"),
        ({"name": ""}, "cookie name"),
        ({"path": "/a;b"}, "cookie path"),
        ({"path": "/a\r\nX: y"}, "cookie path"),
        ({"path": "/a b"}, "cookie path"),
        ({"path": "relative"}, "cookie path"),
        ({"domain": "example.com;"}, "cookie domain"),
        ({"domain": "exa mple.com"}, "cookie domain"),
        ({"domain": "example.com\n"}, "cookie domain"),
        ({"max_age": -1}, "max_age"),
        ({"max_age": 0}, "max_age"),
        ({"max_age": 43200.0}, "whole number"),  # would render Max-Age=43200.0: ignored
        ({"max_age": float("nan")}, "max_age"),
        ({"max_age": True}, "max_age"),
        ({"max_age": "3600"}, "max_age"),
    ],
)
def test_configuration_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CookieSettings(**kwargs)


def test_host_prefix_done_right() -> None:
    assert CookieSettings(name="__Host-sid").name == "__Host-sid"


def test_parse_cookie() -> None:
    header = 'a=1; session=tok; b="quoted"; session=second'
    assert parse_cookie(header, "session") == "tok"
    assert parse_cookie(header, "b") == '"quoted"'  # as sent: quotes are no part of a token
    assert parse_cookie(header, "missing") is None
    assert parse_cookie("", "session") is None
    assert parse_cookie(";;=;session", "session") is None
