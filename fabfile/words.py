"""Text for messages: helpers that any layer may use, importing nothing of fabfile."""

from __future__ import annotations

from collections.abc import Sequence


def some(names: Sequence[str], most: int = 8) -> str:
    """The first few names and how many more: a line stays a line at a hundred nodes."""
    more = len(names) - most
    return ", ".join(names[:most]) + (f" and {more} more" if more > 0 else "")
