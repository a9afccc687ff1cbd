"""fastapi-sessions' ``backends`` package: the stores behind the session cookie."""
