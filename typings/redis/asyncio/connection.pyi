from typing import Any, Self

class Encoder:
    encoding: str
    encoding_errors: str
    decode_responses: bool

class Connection:
    def __init__(
        self,
        *,
        host: str = ...,
        port: int = ...,
        db: int = ...,
        socket_timeout: float | None = ...,
        socket_connect_timeout: float | None = ...,
        **kwargs: Any,
    ) -> None: ...
    async def send_command(self, *args: Any, **kwargs: Any) -> None: ...
    async def send_packed_command(self, command: Any, *args: Any, **kwargs: Any) -> None: ...

class ConnectionPool:
    connection_class: type[Connection]
    connection_kwargs: dict[str, Any]
    max_connections: int
    def __init__(
        self,
        connection_class: type[Connection] = ...,
        max_connections: int | None = ...,
        **connection_kwargs: Any,
    ) -> None: ...
    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Self: ...
    async def aclose(self) -> None: ...
    def reset(self) -> None: ...

class BlockingConnectionPool(ConnectionPool):
    timeout: float | None
    def __init__(
        self,
        max_connections: int = ...,
        timeout: float | None = ...,
        connection_class: type[Connection] = ...,
        **connection_kwargs: Any,
    ) -> None: ...
