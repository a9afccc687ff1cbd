"""authx-extra's session middleware API on typed-sessions: change the imports, keep the app.

``from authx._internal import MemoryIO`` and ``from authx_extra.session import
SessionMiddleware`` become imports from this package (or its ``session`` module).
"""

from typed_sessions.compat.authx_extra.integration import (
    SessionHandle,
    SessionIntegration,
    SessionView,
)
from typed_sessions.compat.authx_extra.session import (
    MemoryIO,
    SessionMiddleware,
    SkipSessionHeader,
)

__all__ = [
    "MemoryIO",
    "SessionHandle",
    "SessionIntegration",
    "SessionMiddleware",
    "SessionView",
    "SkipSessionHeader",
]
