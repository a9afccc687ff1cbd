"""FastAPI and ASGI adapters over the core and the stores."""
