"""Cookie settings, checked once at construction, and pure ``Set-Cookie`` rendering."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = [
    "CookieSettings",
    "SameSite",
    "parse_cookie",
    "render_clear_cookie",
    "render_set_cookie",
]

SameSite: TypeAlias = Literal["lax", "strict", "none"]
"""The ``SameSite`` values browsers recognise, spelled as the attribute is sent."""

# RFC 6265 cookie-name: an RFC 2616 token (no controls, no separators, no spaces).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Path: any visible ASCII but ";" (RFC 6265 av-octets); no controls, spaces or CR/LF.
_PATH = re.compile(r"/[!-:<-~]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"\.?{_LABEL}(?:\.{_LABEL})*")
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
_WSP = " \t"  # RFC 6265 whitespace around a cookie pair


class _DefaultName(str):
    """The default cookie name, resolved by the other settings: a ``str`` subclass, so a
    ``dataclasses.replace`` that changes ``secure``, ``path`` or ``domain`` resolves it again
    instead of keeping a ``__Host-`` name the new settings forbid."""

    __slots__ = ()


_HOST_NAME: Final = _DefaultName("__Host-session")
_PLAIN_NAME: Final = _DefaultName("typed_session")  # not "session": Starlette's own


@dataclass(frozen=True, slots=True)
class CookieSettings:
    """How the session cookie is named and scoped. Secure, HttpOnly and SameSite=Lax by default.

    The default ``name`` is ``"__Host-session"`` whenever the settings allow the prefix
    (``secure=True``, ``path="/"``, no ``domain``, as by default), and ``"typed_session"``
    otherwise (not ``"session"``: Starlette's ``SessionMiddleware``, which apps keep
    beside this one for an OAuth client, names its cookie so). Browsers accept a
    ``__Host-`` cookie only over HTTPS from the host that set it, for the whole site: no
    subdomain, no plain-HTTP page and no other path can plant or overwrite it. (Test
    clients must use an ``https://`` base URL: see the testing guide.) A name given
    explicitly is used as given.

    ``max_age=None`` makes a browser-session cookie (gone when the browser closes); the
    session itself still ends on the server by its :class:`Expiry`.

    Raises:
        ValueError: at construction, for a name, path or domain a browser would misread
            (``;``, spaces, CR/LF, other separators), a ``max_age`` that is not a positive
            ``int``, an unknown ``samesite``, ``samesite="none"`` without ``secure``, a
            ``__Secure-`` name without ``secure``, or a ``__Host-`` name with a domain, a
            path other than ``/`` or without ``secure``.
    """

    name: str = _HOST_NAME
    path: str = "/"
    domain: str | None = None
    max_age: int | None = None
    secure: bool = True
    httponly: bool = True
    samesite: SameSite = "lax"

    def __post_init__(self) -> None:
        if type(self.name) is _DefaultName:
            host = self.secure and self.path == "/" and self.domain is None
            object.__setattr__(self, "name", _HOST_NAME if host else _PLAIN_NAME)
        if not is_http_token(self.name):
            raise ValueError(f"invalid cookie name {self.name!r}: use letters, digits and -._")
        if not _PATH.fullmatch(self.path):
            raise ValueError(f"invalid cookie path {self.path!r}: must start with '/', no ';'")
        if self.domain is not None and not _DOMAIN.fullmatch(self.domain):
            raise ValueError(f"invalid cookie domain {self.domain!r}")
        max_age = self.max_age
        if max_age is not None and (
            type(max_age) is not int or max_age <= 0  # exactly int: bool and float refused
        ):
            raise ValueError(
                "cookie max_age must be None (a browser-session cookie) or a positive whole "
                f"number of seconds, not {max_age!r}: 0 would make browsers delete the cookie "
                "at once, and browsers ignore a Max-Age that is not all digits (use "
                "int(expiry.absolute.total_seconds()))"
            )
        if self.samesite not in ("lax", "strict", "none"):
            raise ValueError(f"samesite must be 'lax', 'strict' or 'none', not {self.samesite!r}")
        if self.samesite == "none" and not self.secure:
            raise ValueError("browsers reject SameSite=None without Secure; set secure=True")
        prefix = self.name[:9].lower()  # browsers match the prefixes in any case
        if prefix == "__secure-" and not self.secure:
            raise ValueError("a __Secure- cookie requires secure=True")
        if prefix.startswith("__host-") and (
            not self.secure or self.domain is not None or self.path != "/"
        ):
            raise ValueError("a __Host- cookie requires secure=True, path='/' and no domain")


def is_http_token(text: str) -> bool:
    """Whether ``text`` is an RFC 9110 token: a valid cookie or header field name."""
    return _TOKEN.fullmatch(text) is not None


def _attributes(settings: CookieSettings) -> str:
    parts = [f"Path={settings.path}"]
    if settings.domain is not None:
        parts.append(f"Domain={settings.domain}")
    if settings.httponly:
        parts.append("HttpOnly")
    if settings.secure:
        parts.append("Secure")
    parts.append(f"SameSite={settings.samesite}")
    return "; ".join(parts)


def render_set_cookie(settings: CookieSettings, value: str) -> str:
    """Return the ``Set-Cookie`` header value that stores ``value`` (a signed token).

    ``value`` must be cookie-safe; tokens from ``sign_session_id`` always are.
    """
    max_age = "" if settings.max_age is None else f"; Max-Age={settings.max_age}"
    return f"{settings.name}={value}{max_age}; {_attributes(settings)}"


def render_clear_cookie(settings: CookieSettings) -> str:
    """Return the ``Set-Cookie`` header value that deletes the cookie in the browser.

    It carries the same Path, Domain, Secure and SameSite as the cookie it removes.
    """
    return f'{settings.name}=""; Max-Age=0; Expires={_EPOCH}; {_attributes(settings)}'


def parse_cookie(header: str, name: str) -> str | None:
    """Return the value of cookie ``name`` from a ``Cookie`` request header, or ``None``.

    The value is returned as sent, only the spaces and tabs around it removed: quotes are
    kept, so ``name="<token>"`` or ``name="<token>`` (one stray quote) gives a value that
    no token verifies, and each token has exactly one spelling. When the header holds the
    name more than once, the first wins (the most specific path, in the order browsers
    send them). Linear in the length of the header, whatever it holds; never raises.
    """
    if name not in header:  # at C speed: the usual request that carries other cookies only
        return None
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip(_WSP) == name:
            return value.strip(_WSP)
    return None
