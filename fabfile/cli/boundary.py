"""The one place where a command's outcome becomes what the user reads and an exit code.

A `DeployError` becomes its sentence (secrets masked) and its exit code; Ctrl-C,
SIGTERM and SIGHUP stop a command alike (`fabfile.engine.signals`) and exit with
their signal's code; a reader that leaves (``deploy | head``) ends us quietly. The
Invoke tasks (`boundary`, for ``deploy``, ``inv`` and ``fab``) and the status table's
fast path (`fabfile.cli.bare`) both go through `outcome`, so they cannot drift apart.
No Invoke at import: the fast path does not load it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from ..app.credentials import redact
from ..engine import signals
from ..errors import DeployError, ExitCode, explain

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a command ended: its exit code and the message for stderr (None: nothing)."""

    code: int
    message: str | None = None


def outcome(command: Callable[[], ExitCode | None]) -> Outcome:
    """Run ``command`` with SIGTERM and SIGHUP stopping it as Ctrl-C does; our errors
    become their message and exit code. Anything else is a bug and keeps its traceback."""
    try:
        with signals.handled():
            code = command()
    except DeployError as error:
        return Outcome(int(error.exit_code), f"error: {redact(explain(error))}")
    except KeyboardInterrupt as interrupt:
        cause, code = signals.cause(interrupt), signals.exit_code(interrupt)
        return Outcome(int(code), f"interrupted ({cause})")
    finally:
        _close_spares()
    return Outcome(int(code or ExitCode.OK))


def boundary(function: F) -> F:
    """An Invoke task's boundary: its `outcome` as Invoke's ``Exit`` (which prints the
    message and exits with the code); ``inv --dry`` is refused."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        # Invoke is loaded by now (it runs the task): importing it here costs nothing,
        # and keeps it out of the fast path, which imports this module too.
        from invoke import Context
        from invoke.exceptions import Exit

        from .flags import DRY_RUN

        if args and isinstance(args[0], Context) and args[0].config.run.dry:
            # ``inv --dry`` only echoes c.run(); our tasks would deploy for real.
            raise Exit(f"error: --dry: {DRY_RUN}", code=int(ExitCode.USAGE))
        ended = outcome(lambda: function(*args, **kwargs))
        if ended.message is not None or ended.code:
            raise Exit(ended.message, code=ended.code)

    return wrapper  # type: ignore[return-value]


def _close_spares() -> None:
    """Close the SSH connections HTTP through SSH dialled for itself. A command that
    never loaded `fabfile.cluster.tunnel` dialled none, and must not pay for loading
    it (Paramiko and Fabric) on its way out."""
    lbhost = sys.modules.get("fabfile.cluster.lbhost")
    if lbhost is not None:  # the balancer hosts' (closing one may leave it a spare)
        lbhost.close_all()
    tunnel = sys.modules.get("fabfile.cluster.tunnel")
    if tunnel is not None:
        tunnel.close_spares()


def reader_gone() -> NoReturn:
    """The reader of our output left (``deploy --help | head``): end quietly, as Unix tools do.

    Python would print a traceback, and a second one when it flushes stdout at exit;
    stdout is pointed at /dev/null so that flush has nowhere to fail. Exit 141 is what
    a shell reports for a process ended by SIGPIPE.
    """
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)
