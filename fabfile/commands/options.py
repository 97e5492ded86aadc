"""The options every command takes, and the small pieces of work several share:
finding the WAR a command names, recording a refusal.
"""

from __future__ import annotations

import dataclasses
import functools
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..app.appdir import AppDir
from ..app.config import NodeConfig
from ..app.endpoints import choose
from ..app.pace import Pace, parse_batch
from ..app.warcache import Known
from ..cluster.balancers import Balancers
from ..engine import strategies
from ..engine.strategies.contract import Strategy
from ..errors import (
    DeployError,
    UsageError,
    explain,
)
from ..records.history import Action, History, Record, Result
from ..view import console as view
from ..view.grid import Printer, page

if TYPE_CHECKING:  # imported by `artifact`, when a command names a WAR: not for status
    from ..app import artifact as artifacts


class _MadeOnFirstUse:
    """`Options.console`: the console a caller gave, or one for stdout made when a
    command first prints through it (`fabfile.view.console.make_console`: rich's on a
    terminal, piped one that loads rich only for what it cannot print as plain text)."""

    def __get__(self, options: Any, owner: type | None = None) -> Any:
        if options is None:
            return self  # the field's default: none given
        console = options.__dict__.get("_console")
        if console is None:
            console = options.__dict__["_console"] = view.make_console()
        return console

    def __set__(self, options: Any, console: view.Out | _MadeOnFirstUse) -> None:
        options.__dict__["_console"] = None if console is self else console


@dataclasses.dataclass(frozen=True)
class Options:
    """What every command takes: where the app is, which nodes, how to print."""

    app: AppDir
    hosts: tuple[str, ...] | None = None
    console: view.Out = dataclasses.field(  # type: ignore[assignment]
        default=_MadeOnFirstUse(), compare=False, repr=False
    )
    lock_wait: float = 0.0  # seconds to wait for a lock another run holds (--lock-wait)
    lbs: tuple[str, ...] | None = None  # the balancers --lb names (None: every one)

    def __post_init__(self) -> None:
        """Every command reads ``.config`` with its strategy's rules (`strategies.validate`)."""
        if self.app.rules is None:
            object.__setattr__(
                self, "app", dataclasses.replace(self.app, rules=strategies.validate)
            )

    @functools.cached_property
    def out(self) -> Printer:
        """Where the status command prints: on stdout, the bytes rich would print there
        (plain text piped, rich's codes on a terminal: `fabfile.view.grid.page`), else
        `console`; a console given (or already made) takes everything."""
        given = self.__dict__.get("_console") is not None
        return Printer(lambda: view.rich_of(self.console), None if given else page(sys.stdout))

    @property
    def nodes(self) -> tuple[NodeConfig, ...]:
        return self.app.config.select(self.hosts)

    @property
    def strategy(self) -> type[Strategy]:
        """The app's strategy: what it declares decides what a command does beyond the common."""
        return strategies.kind(self.app.config)

    def require(self, command: str, what: str) -> None:
        """`UsageError` unless the app's strategy offers ``command`` (``switch``, ``retire``)."""
        strategies.require(self.app.config, command, what)

    @functools.cached_property
    def balancers(self) -> Balancers | None:
        """The balancers to drain through (those ``--lb`` names), built once: one
        connection to each for the whole command; None when ``.config`` names none."""
        config = self.app.config
        try:
            chosen = choose(config.balancers, self.lbs)
        except ValueError as error:
            raise UsageError(str(error)) from None
        return Balancers.of(config, chosen)

    def command(self, *words: str) -> str:
        """The command line that repeats ``words`` for this app and these hosts."""
        line = ["deploy", *words, "--app-dir", str(self.app.path)]
        if self.hosts:
            line += ["--hosts", ",".join(self.hosts)]
        if self.lbs:
            line += ["--lb", ",".join(self.lbs)]
        return shlex.join(line)


@dataclasses.dataclass(frozen=True)
class PaceFlags:
    """``--batch`` and ``--confirm``: what the command line changes in ``.config``'s pace."""

    batch: str | None = None
    confirm: bool = False

    def apply(self, pace: Pace, canary: bool = True) -> Pace:
        """``pace`` with the flags; ``canary=False`` (a rollback, a switch) goes without
        a canary, verdicts or a watch window: it goes back to what worked."""
        if self.batch is not None:
            try:
                pace = dataclasses.replace(pace, batch=parse_batch(self.batch))
            except ValueError as error:
                raise UsageError(f"--batch {self.batch}: {error}") from None
        if self.confirm:
            if not sys.stdin.isatty():
                raise UsageError(
                    "--confirm asks on a terminal, and stdin is not one; without it the "
                    "canary is judged over canary_wait seconds"
                )
            pace = dataclasses.replace(pace, confirm=True, canary=max(pace.canary, 1))
        return pace if canary else dataclasses.replace(pace, canary=0, watch=0.0, judged=False)


def record_refusal(options: Options, action: Action, artifact: str, error: DeployError) -> None:
    """Bad input changes nothing, but the history still says it was tried and why."""
    record = Record(action, Result.REFUSED, Path(artifact).name, message=explain(error))
    try:
        History(options.app.history_path).append(record)
    except DeployError as unwritten:  # the refusal is what the user must read
        error.add_note(f"(not recorded in the history: {unwritten})")


def artifact(app: AppDir, war: str | None, latest: bool) -> artifacts.Artifact:
    """The WAR a command names, or with none (or --latest) the newest by Maven version."""
    from ..app import artifact as artifacts

    if war and latest:
        raise UsageError("give a WAR or --latest, not both")
    if war:
        return artifacts.read(_war_path(app, war), app.name, Known(app.path))
    return artifacts.newest(app.path, app.name, Known(app.path))


def _war_path(app: AppDir, war: str) -> Path:
    path = Path(war)
    return (path if path.is_absolute() or path.exists() else app.path / path).absolute()


NO_FLAGS = PaceFlags()  # the pace as .config gives it
