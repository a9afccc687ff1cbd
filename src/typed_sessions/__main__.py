"""``python -m typed_sessions``: see :mod:`typed_sessions.cli`."""

import sys

from typed_sessions.cli import main

sys.exit(main())
