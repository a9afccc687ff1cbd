"""The demo: ``python -m typed_sessions demo`` serves it on 127.0.0.1.

Sign in with a name (cookie dependency + ``start_session``/``rotate_session``), see who
you are, count your visits (the middleware, in its own cookie), rotate the session ID,
sign out (``end_session``). Memory store by default; ``--redis URL`` for Redis,
``--sql URL`` for a SQL database.
"""

from typed_sessions.demo.app import create_app, serve

__all__ = ["create_app", "serve"]
