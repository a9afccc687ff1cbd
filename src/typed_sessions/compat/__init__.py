"""Drop-in compatibility packages for apps leaving fastapi-sessions and authx-extra.

- :mod:`typed_sessions.compat.fastapi_sessions` mirrors fastapi-sessions 0.3's import
  paths (``frontends.implementations``, ``backends.implementations``,
  ``session_verifier``);
- :mod:`typed_sessions.compat.authx_extra` offers authx-extra's ``SessionMiddleware`` and
  ``MemoryIO``.

They map those APIs onto typed-sessions' own (signed tokens, expiring records,
compare-and-set stores, valid cookies) and hold no session logic of their own. Nothing
in typed-sessions imports them. The migration guides list every behaviour difference.
"""
