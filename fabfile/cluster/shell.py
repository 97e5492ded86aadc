"""Words for the remote shell: every variable part of a command is quoted here."""

from __future__ import annotations

import shlex


def sh_path(path: str) -> str:
    """``path`` as one shell word, with a leading ``~/`` left to the remote shell."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)
