"""The flags of every command, in one table, and the boundary where errors become exits.

`FLAGS` gives each flag its short letter (the same in every command), the name
of its value and its help line; `DeployTask` builds Invoke's arguments from it,
so ``deploy``, ``inv`` and ``fab`` agree. `boundary` is the one place where a
`DeployError` becomes the message the user reads and its exit code, for
``deploy`` and ``inv`` alike, and where SIGTERM and SIGHUP are made to stop a
command as Ctrl-C does (`fabfile.engine.signals`).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from invoke import Argument, Context, Task
from invoke.exceptions import Exit, ParseError

from ..app.credentials import redact
from ..engine import signals
from ..errors import DeployError, ExitCode, explain

F = TypeVar("F", bound=Callable[..., Any])
LIMIT = 20


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one flag is spelled and explained: ``-H, --hosts LIST  Only these nodes...``."""

    short: str
    value: str  # the value's name in help; empty for an on/off flag
    help: str


FLAGS = {
    "hosts": Spec("H", "LIST", "Only these nodes: a,b."),
    "lb": Spec("", "LIST", "Only these balancers of lb_socket: a,b."),
    "app-dir": Spec("C", "DIR", "The app directory (default: the current directory)."),
    "app": Spec("", "NAME", "An app by name, in $DEPLOY_APPS_ROOT (default ./apps)."),
    "artifact": Spec("", "WAR", "The WAR (default: the newest version)."),
    "latest": Spec("l", "", "Use the newest WAR by Maven version."),
    "force": Spec("f", "", "Redo nodes on it; past switch, heap, live-lock checks."),
    "now": Spec("", "", "Undeploy old versions now, sessions or not."),
    "no-switch": Spec("", "", "Blue/green: verify the idle colours, no switch."),
    "dry-run": Spec("", "", "Print the plan and config diffs; change nothing."),
    "batch": Spec("b", "N|P%", "Nodes at once (default: .config batch)"),
    "confirm": Spec("", "", "Ask to go on after the canary."),
    "lock-wait": Spec("", "N", "Wait up to N seconds for a lock another run holds."),
    "json": Spec("j", "", "As JSON."),
    "limit": Spec("n", "N", f"Last N records (default {LIMIT})."),
    "stats": Spec("", "", "Delivery metrics of the runs instead."),
    "since": Spec("", "AGE", "Only the runs of the last AGE: 12h, 30d, 2w."),
    "run": Spec("", "N", "A run by its # in history (default: the last)."),
    "output": Spec("o", "FILE", "Draw it here: .svg or .html."),
}
DRY_RUN = "the dry run is `deploy WAR --dry-run` (it prints the plan); nothing was done"


class Flag(Argument):
    """An Invoke `Argument` that knows its spelling and the name of its value."""

    def __init__(self, value_name: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value_name = value_name

    @classmethod
    def of(cls, arg: Argument) -> Flag:
        """The task argument Invoke built, with the value name from `FLAGS`."""
        return cls(
            FLAGS[arg.names[0]].value,
            names=arg.names,
            kind=arg.kind,
            default=arg.default,
            help=arg.help,
            positional=arg.positional,
            optional=arg.optional,
            incrementable=arg.incrementable,
            attr_name=arg.attr_name,
        )

    @property
    def spelling(self) -> str:
        """``-H, --hosts LIST``: what help shows."""
        long = next(f"--{n}" for n in self.names if len(n) > 1)
        short = [f"-{n}" for n in self.names if len(n) == 1]
        words = [", ".join([*short, long])]
        if self.value_name:
            words.append(f"[{self.value_name}]" if self.optional else self.value_name)
        return " ".join(words)

    def __repr__(self) -> str:
        # Invoke's own messages show the flag with !r ("Flag ... needed value").
        return next(f"--{n}" for n in self.names if len(n) > 1)

    def set_value(self, value: Any, cast: bool = True) -> None:
        if cast and value == "" and self.takes_value:
            raise ParseError(f"{self!r} needs a value")  # --hosts= would mean every node
        try:
            super().set_value(value, cast=cast)
        except ValueError:
            kind = {int: "a whole number", float: "a number"}.get(self.kind, self.kind.__name__)
            raise ParseError(f"{self!r} takes {kind}, not {value!r}") from None


class DeployTask(Task[Callable[..., Any]]):
    """A task whose flags come from `FLAGS`, not from Invoke's first-free-letter guess."""

    def arg_opts(self, name: str, default: Any, taken_names: set[str]) -> dict[str, Any]:
        opts: dict[str, Any] = super().arg_opts(name, default, taken_names)
        long = opts["names"][0]
        spec = FLAGS[long]
        opts["names"] = [long, spec.short] if spec.short else [long]
        opts["help"] = spec.help  # from the table: Invoke pops its help dict on first use
        return opts

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        return [Flag.of(arg) for arg in super().get_arguments(ignore_unknown_help)]


def boundary(function: F) -> F:
    """Turn our errors into their message and exit code; exit non-zero on failure.
    SIGTERM and SIGHUP interrupt the command as Ctrl-C does, exiting 143 and 129."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        if args and isinstance(args[0], Context) and args[0].config.run.dry:
            # ``inv --dry`` only echoes c.run(); our tasks would deploy for real.
            raise Exit(f"error: --dry: {DRY_RUN}", code=int(ExitCode.USAGE))
        try:
            with signals.handled():  # SIGTERM and SIGHUP stop it as Ctrl-C does
                code = function(*args, **kwargs)
        except DeployError as error:
            raise Exit(f"error: {redact(explain(error))}", code=int(error.exit_code)) from None
        except KeyboardInterrupt as interrupt:
            cause, code = signals.cause(interrupt), signals.exit_code(interrupt)
            raise Exit(f"interrupted ({cause})", code=int(code)) from None
        finally:
            _close_spares()
        if code:
            raise Exit(code=int(code))

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
