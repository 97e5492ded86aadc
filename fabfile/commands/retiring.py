"""Parallel deployment: retiring old versions once their sessions end, with its record.

Shared by ``deploy retire`` and by deploy and rollback (``retire = auto``). Retire holds
the app's lock only while it undeploys, never while it waits for sessions to end, so an
emergency ``deploy rollback`` is never refused because of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence

from ..cluster.manager import Manager
from ..engine import signals
from ..engine.retirement import Held, Retirement
from ..errors import (
    DeployError,
    ExitCode,
    Interrupted,
    NodeError,
    explain,
)
from ..records.history import Action, History, HostRecord, Record, Result
from ..view import console as view
from ..view import progress
from .locks import locked
from .options import Options


def retire_after(options: Options, code: ExitCode) -> ExitCode:
    """Parallel, ``retire = auto``: retire old versions once the new one serves. What is
    left after retire_timeout keeps serving its users; the deploy itself succeeded."""
    if (
        code != ExitCode.OK
        or "retire" not in options.strategy.commands
        or not options.app.config.retire
    ):
        return code
    try:
        retire_old(options)
    except Interrupted:
        raise
    except DeployError as error:  # the deploy is done: say what the retire could not do
        options.console.print(
            view.plain(
                f"deployed; retire did not finish: {explain(error)}. "
                f"Run it later: {options.command('retire')}"
            )
        )
    return code


def retire_old(options: Options, now: bool = False) -> ExitCode:
    """Parallel: undeploy old versions once their sessions end on each host (``now``:
    whatever their sessions), waiting at most ``retire_timeout``.

    Non-zero when old versions are left; they keep serving their users."""
    options.require("retire", "deploy retire")
    nodes = options.nodes
    manager = Manager.for_nodes(nodes)
    assert manager is not None  # the strategy's `validate` requires manager_user
    timeout = options.app.config.retire_timeout
    shown = progress.RetireView(options.console)
    verified = History(options.app.history_path).verified_tags()
    command = options.command("retire", *(["--now"] if now else []))
    guard = _Guard(options, command)
    run = Retirement(manager, nodes, shown, timeout, now, verified, guard=guard)
    left = _retire_recorded(options, run, shown)
    if left and run.locked_out:
        options.console.print(view.plain(_locked_message(run.locked_out, options, now)))
    elif left:
        options.console.print(view.plain(_left_message(left, timeout, options)))
    elif not run.failed:
        options.console.print("retire: no old version left")
    return ExitCode.NODE_FAILED if left or run.failed else ExitCode.OK


@dataclasses.dataclass(frozen=True)
class _Guard:
    """Retire's `fabfile.engine.retirement.Guard`: the deploy locks, taken only for
    a round of undeploys, so a rollback never waits behind retire's wait."""

    options: Options
    command: str

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Both locks (the app directory's and the nodes'), for one round of undeploys."""
        with locked(self.options, self.command) as lock:
            lock.hold()
            yield

    def verified(self) -> dict[str, str]:
        return History(self.options.app.history_path).verified_tags()


def _retire_recorded(options: Options, run: Retirement, shown: progress.RetireView) -> list[Held]:
    """Run ``run`` and write its history record, however it ends."""
    left: list[Held] = []
    result, message = Result.OK, ""
    try:
        with shown:
            left = run.run()
    except KeyboardInterrupt as interrupt:  # Ctrl-C, SIGTERM, SIGHUP
        result = Result.INTERRUPTED
        message = f"retire interrupted by {signals.cause(interrupt)}: every version not yet "
        message += "undeployed keeps serving; run `deploy retire` again to go on"
        raise signals.interrupted(message, interrupt) from None
    except NodeError as error:
        result, message = Result.FAILED, str(error)
        raise
    finally:
        _record_retire(options, run, left, result, message)
    return left


def _locked_message(locked_out: str, options: Options, now: bool) -> str:
    again = options.command("retire", *(["--now"] if now else []))
    return (
        f"retire stopped waiting, another run holding the lock: {locked_out}\nEvery old "
        f"version still deployed keeps serving; run {again} once that run is over"
    )


def _left_message(left: Sequence[Held], timeout: float, options: Options) -> str:
    held = "; ".join(f"{h.node}: {h.version.label}, {h.version.sessions} session(s)" for h in left)
    return (
        f"after retire_timeout ({timeout:g} s) old versions still hold sessions ({held}). "
        f"They keep serving their users; leave them (the next retire tries again), or end "
        f"them now, logging those users out: {options.command('retire', '--now')}"
    )


def _record_retire(
    options: Options, run: Retirement, left: Sequence[Held], result: Result, message: str
) -> None:
    hosts = {}
    for node in options.nodes:
        gone = [f"undeployed {label}" for label in run.retired.get(node.label, [])]
        kept = [f"holds {h.version.label}" for h in left if h.node == node.label]
        hosts[node.label] = HostRecord("; ".join(gone + kept) or "nothing to retire")
    record = Record(Action.RETIRE, result, "", message=message, hosts=hosts)
    History(options.app.history_path).append(record)
