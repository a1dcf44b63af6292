"""One-paragraph messages for the console."""

from __future__ import annotations

import textwrap

__all__ = ["fill_message"]


def fill_message(message) -> str:
    """A message wrapped at 100 columns, breaking only at spaces (never inside a path)."""
    return textwrap.fill(str(message), 100, subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)
