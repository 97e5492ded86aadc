"""``deploy retire``: parallel, undeploy old versions once their sessions end."""

from __future__ import annotations

from ..errors import (
    ExitCode,
)
from . import retiring
from .options import Options


def retire(options: Options, now: bool = False) -> ExitCode:
    """Parallel: undeploy old versions once their sessions end on each host (``now``:
    whatever their sessions), waiting at most ``retire_timeout``.

    Non-zero when old versions are left; they keep serving their users."""
    return retiring.retire_old(options, now)
