"""``deploy rollback``: back to the release deployed before the current one."""

from __future__ import annotations

from ..errors import (
    ExitCode,
)
from . import execute
from .options import NO_FLAGS, Options, PaceFlags


def rollback(options: Options, flags: PaceFlags = NO_FLAGS) -> ExitCode:
    """Go back to the release deployed before the current one, from the nodes' copies.

    What "back" means is the strategy's (`fabfile.engine.strategies.contract.Rollback`);
    for rolling it is a rolling redeploy of the previous release.
    """
    return execute.go_back(options, flags)
