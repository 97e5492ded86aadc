"""Version tags for Tomcat parallel deployment: ``ROOT##000007-1.2.0``.

Tomcat serves new sessions from the version whose ``##`` tag sorts last *as a
string*: ``##9`` beats ``##10``, and ``##0010`` still loses to ``##9``. Maven
versions do not sort that way either (``1.0.10`` > ``1.0.9``). So a tag is a
fixed-width sequence number, one above the highest any host of the app holds,
followed by the Maven version for people to read: the number decides the
order, the version says what it is, and every tag carries both.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

WIDTH = 6  # up to 999999 deploys of one app
_TAG = re.compile(rf"^(?P<sequence>\d{{{WIDTH}}})-(?P<version>[A-Za-z0-9._+-]+)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


@dataclasses.dataclass(frozen=True, order=True)
class Tag:
    """A deployed version of the app: its sequence number and its Maven version."""

    sequence: int
    version: str

    @property
    def text(self) -> str:
        """The tag as Tomcat sees it (after ``##``): sorts as the sequence does."""
        return f"{self.sequence:0{WIDTH}d}-{_UNSAFE.sub('_', self.version)}"

    def __str__(self) -> str:
        return f"{self.version} (##{self.text})"

    @classmethod
    def parse(cls, text: str) -> Tag | None:
        """The tag ``text`` names; None for a tag this tool did not write (e.g. ``##9``)."""
        match = _TAG.match(text)
        if match is None:
            return None
        return cls(int(match["sequence"]), match["version"])


def following(tags: Iterable[Tag], version: str) -> Tag:
    """The tag for deploying ``version`` after ``tags``: one above the highest."""
    return Tag(max((tag.sequence for tag in tags), default=0) + 1, version)
