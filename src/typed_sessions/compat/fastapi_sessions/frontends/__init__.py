"""fastapi-sessions' ``frontends`` package: where the session ID travels (a cookie)."""
