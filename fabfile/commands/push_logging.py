"""``deploy logging``: push logback.xml to every node, live, without a restart."""

from __future__ import annotations

from ..app.release import Release
from ..cluster import logback
from ..errors import (
    ConfigError,
    ExitCode,
)
from ..records.archive import Archive
from ..records.history import Action, History, HostRecord, Record, Result
from ..view import console as view
from .locks import locked
from .options import Options


def logging(options: Options) -> ExitCode:
    """Push logback.xml (each host's own, if it has one) to every node, live: no restart.

    Recorded as a release (the current one with this logback.xml), so a rollback
    goes back to the logging configuration before it."""
    app, nodes = options.app, options.nodes
    files = app.overrides()
    wanted = logback.settings(files, tuple(dict.fromkeys(node.host for node in nodes)))
    assert files.base.logback is not None  # `logback.settings` requires it
    sources = {s.file.sha256: Archive(app.path).keep(s.file.data) for s in wanted.values()}
    with locked(options, options.command("logging")) as lock:
        current = History(app.history_path).current()  # read under the lock: it is ours
        if current is None:
            raise ConfigError(
                f"{app.history_path}: no release recorded; deploy a WAR first (logback.xml "
                "goes with it), then push logging changes"
            )
        own = {host: current.for_host(host).logback for host in app.config.hosts}
        own |= {host: setting.file.sha256 for host, setting in wanted.items()}
        release = current.with_logback(files.base.logback.sha256, own)
        lock.hold()
        pushes = [logback.Push(lock.node(node), wanted[node.host]) for node in nodes]
        options.console.print(f"logging: logback.xml to {len(nodes)} node(s), no restart")
        try:
            logback.push_all(pushes, sources)
        finally:  # the lock closes the nodes once it is released
            _record_logging(options, release, pushes)
    for push in pushes:
        options.console.print(view.plain(f"{push.label}: {push.outcome}: {push.detail}"))
    failed = [push.label for push in pushes if not push.ok]
    if failed:
        options.console.print(
            view.plain(
                f"logging failed on {', '.join(failed)} (each line above says what it left); "
                f"the others run the new one. Fix it and run {options.command('logging')} "
                f"again, or go back everywhere: {options.command('rollback')}"
            )
        )
    return ExitCode.NODE_FAILED if failed else ExitCode.OK


def _record_logging(options: Options, release: Release, pushes: list[logback.Push]) -> None:
    ok = all(push.ok for push in pushes)
    hosts = {push.label: HostRecord(push.outcome, push.detail) for push in pushes}
    result = Result.OK if ok else Result.FAILED
    if not any(push.touched for push in pushes):
        result = Result.REFUSED  # no node changed: not a release the cluster moved to
    record = Record(Action.LOGGING, result, release.war_name, release=release, hosts=hosts)
    History(options.app.history_path).append(record)
