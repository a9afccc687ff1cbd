"""A Griffe extension for the API reference: the docstrings' reST markup as Markdown.

The docstrings use Sphinx roles (``:class:`StoreError```) and ``::`` before literal
blocks. mkdocstrings renders docstrings as Markdown, where both would show as raw text.
This turns each role into inline code, linked (as an optional cross-reference, which
never fails the build) to the object the name resolves to; and ``text::`` into
``text:``. The source docstrings are not changed.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|data|attr|exc|obj|mod):`(~?)([^`]+)`")
_LITERAL_MARKER = re.compile(r"(?m)(\S)::$")
_BARE_MARKER = re.compile(r"(?m)^[ \t]*::\n")


def _target(obj: griffe.Object | griffe.Alias, name: str) -> str | None:
    if "." in name:
        return name
    try:
        return obj.resolve(name)
    except (griffe.NameResolutionError, griffe.AliasResolutionError, KeyError, ValueError):
        return None


def _markdown(obj: griffe.Object | griffe.Alias, text: str) -> str:
    def role(match: re.Match[str]) -> str:
        short, name = match[1] == "~", match[2]
        shown = name.rsplit(".", 1)[-1] if short else name
        code = f"<code>{html.escape(shown)}</code>"
        target = _target(obj, name)
        if target is None:
            return code
        identifier = html.escape(target, quote=True)
        return f'<autoref identifier="{identifier}" optional>{code}</autoref>'

    text = _ROLE.sub(role, text)
    text = _BARE_MARKER.sub("\n", text)
    return _LITERAL_MARKER.sub(r"\1:", text)


class RstRoles(griffe.Extension):
    """Rewrite every docstring once the object tree is complete."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _markdown(obj, obj.docstring.value)
