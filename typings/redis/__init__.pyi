# Local stubs for the part of redis-py (5.0.2 and later) that typed-sessions and its tests
# use, replacing its inline annotations, whose command results are `Any`
# (`ResponseT = Awaitable[Any] | Any`). Read by mypy (mypy.ini: mypy_path = typings) and
# pyright (pyproject.toml: [tool.pyright] stubPath = "typings"). Anything not declared
# here is an error for both checkers: add it, with its real type, when code needs it.
from redis import asyncio as asyncio
from redis import exceptions as exceptions
from redis.client import Redis as Redis
from redis.exceptions import RedisError as RedisError
from redis.exceptions import ResponseError as ResponseError

__all__ = ["Redis", "RedisError", "ResponseError", "asyncio", "exceptions"]
