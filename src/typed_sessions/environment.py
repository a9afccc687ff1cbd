"""The application secret from the environment, with no public default to fall back on.

An example app that falls back to a secret written in its source signs every cookie with
a key anyone can read. :func:`secret_from_env` refuses to start without the variable set,
unless development mode is switched on explicitly; then it warns and makes a random
secret for this process only (sessions end when it restarts).
"""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import Mapping

__all__ = ["DEVELOPMENT_ENV", "secret_from_env"]

DEVELOPMENT_ENV = "TYPED_SESSIONS_DEVELOPMENT"
"""The variable that, set to ``1``, lets :func:`secret_from_env` make a throwaway secret."""


def secret_from_env(
    name: str = "SESSION_SECRET", *, environ: Mapping[str, str] | None = None
) -> str:
    """Return the secret in environment variable ``name`` (default ``SESSION_SECRET``).

    Without it (or with only whitespace in it): in development mode
    (``TYPED_SESSIONS_DEVELOPMENT=1``) warn with a ``RuntimeWarning`` and return a random
    secret for this process; otherwise raise.
    ``environ`` replaces ``os.environ`` (for tests).

    Raises:
        RuntimeError: ``name`` is unset, empty or blank and development mode is off, or
            it holds bytes that are not UTF-8.
    """
    env = os.environ if environ is None else environ
    secret = env.get(name, "")
    if secret.strip():  # (blank: a template that filled in nothing, as good as unset)
        try:
            secret.encode()
        except UnicodeEncodeError:  # bytes that are not UTF-8, kept by os.environ
            raise RuntimeError(f"{name} is not UTF-8 text; use `keygen` to make one") from None
        return secret
    if env.get(DEVELOPMENT_ENV) == "1":
        warnings.warn(
            f"{name} is not set: using a random secret for this process only "
            f"({DEVELOPMENT_ENV}=1; sessions end when it restarts). Never in production.",
            RuntimeWarning,
            stacklevel=2,
        )
        return secrets.token_urlsafe(32)
    raise RuntimeError(
        f"{name} is not set. Generate one with `python -m typed_sessions keygen` and keep it "
        f"out of source control; for local development only, set {DEVELOPMENT_ENV}=1 to use "
        "a random secret per process"
    )
