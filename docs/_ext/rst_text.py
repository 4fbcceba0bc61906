"""Helpers shared by the generated reference pages: text taken from the code, made safe to put into reST."""
from __future__ import annotations

import re
from typing import List

_SPECIAL = re.compile(r"([\\*`|_\[\]<>])")


def escape(text: str) -> str:
    """``text`` with every reST inline-markup character escaped, so a code comment or help string reads as
    written."""
    return _SPECIAL.sub(r"\\\1", text)


def title(text: str, underline: str) -> List[str]:
    """A reST section title: ``text`` and its underline."""
    return [text, underline * len(text), ""]


def indent(lines: List[str], spaces: int = 3) -> List[str]:
    """``lines`` indented by ``spaces`` (blank lines stay blank)."""
    return [" " * spaces + line if line else "" for line in lines]
