"""``deploy``: every node's /status and haproxy state, probed in parallel."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..app.config import NodeConfig
from ..app.credentials import redact
from ..cluster import probe
from ..cluster.balancer import State
from ..cluster.balancers import worst
from ..cluster.probe import Status
from ..engine.strategies.contract import Columns
from ..errors import (
    ConfigError,
    ExitCode,
    NodeError,
)
from ..records.history import History
from ..view import console as view
from ..view import tables
from . import cutoff
from .options import Options

if TYPE_CHECKING:
    from ..cluster.manager import Deployed, Manager

# SSH (Paramiko, Fabric) and the Tomcat manager are loaded only where a node needs them:
# the lock when `_calm` says so, who took a node out, a parallel app's versions; so is
# concurrent.futures (and the logging it imports), which the table of a calm cluster
# does not use.


def status(options: Options, as_json: bool = False) -> ExitCode:
    """Print every node's /status (and haproxy state), probed in parallel, and the
    deploy lock where a run may hold it (with ``--json``, on stderr).

    Non-zero when a node is not Ok or is out of rotation: a node left in
    maintenance serves nobody, however well its /status answers. On a
    blue/green app the idle colour is out of rotation by design: non-zero
    when a host has no live colour, or its live colour is not Ok and UP.
    Non-zero too when haproxy's server for a node sends traffic elsewhere (a
    swapped status_url or lb_server): the table would show another node's state.
    A run with no end (cut off, or still running) is told below the table.

    The lock is on the nodes and costs SSH (loading Paramiko and a login per host, more
    than the rest of the command): it is read only when the table or the history gives
    a reason (`_calm`), whichever coordinator's run holds it.
    """
    sooner = _Sooner(options.nodes)
    code, calm = _status(options, as_json, sooner.start)
    if calm:
        return code
    from . import locks

    for line in locks.lines(locks.read(options.nodes, sooner.found())):
        if as_json:
            sys.stderr.write(line + "\n")
        else:
            options.out.line(view.piece(line))
    return code


class _Sooner:
    """The lock read's first step, which needs no SSH (`locks.turned_away`: which hosts'
    sshd turns a connection away), started in the background once a node fails, while
    the probes of the others (a hanging one takes its timeout) still run: a node not Ok
    means the lock is read. The SSH logins wait for the table, not to slow the probes."""

    def __init__(self, nodes: tuple[NodeConfig, ...]) -> None:
        self._nodes = nodes
        self._thread: threading.Thread | None = None
        self._found: dict[str, str] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start it, once (called from the probes' threads)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        from . import locks

        self._found = locks.turned_away(self._nodes)

    def found(self) -> dict[str, str] | None:
        """Its answer once it ends; None when it never started (or failed: then the lock
        read takes the step itself)."""
        with self._lock:
            thread = self._thread
        if thread is None:
            return None
        thread.join()
        return self._found


def _calm(
    code: ExitCode,
    statuses: Sequence[Status],
    expected: str | None,
    live: Mapping[str, bool] | None,
    unfinished: bool,
) -> bool:
    """Nothing a run leaves shows: every node Ok and in rotation, the nodes that serve on
    one version (the last one this app directory deployed, when it knows one), and no
    run without an end in its history. A run of any coordinator that holds the deploy
    lock shows here once it drains, restarts or changes a node; before that (pre-flight,
    staging) it holds the lock unseen, and the deploy it blocks says so."""
    serving = {s.version for s in statuses if live is None or live.get(s.host, False)}
    one = len(serving) <= 1 and (expected is None or serving <= {expected})
    return code == ExitCode.OK and all(s.ok for s in statuses) and one and not unfinished


def _status(
    options: Options, as_json: bool, failed: Callable[[], None] | None = None
) -> tuple[ExitCode, bool]:
    """The table, its exit code, and whether it is `_calm` (``failed``: called as soon as
    a node is seen not Ok)."""
    nodes = options.nodes
    statuses = probe.probe_all(nodes, failed)
    current = History(options.app.history_path).current()
    expected = current.version if current else None
    if options.strategy.status is Columns.VERSIONS:
        code, unfinished = _versions_status(options, statuses, expected, as_json)
        return code, _calm(code, statuses, expected, None, unfinished)
    views, unread = _views(options, nodes)
    rotation = _worst(nodes, views) if views is not None else None
    colours = options.strategy.status is Columns.COLOURS
    live = live_colours(nodes, rotation) if colours and rotation is not None else None
    if as_json:
        text = tables.status_json(statuses, expected, rotation, live, views)
        options.out.write(text + "\n")
    else:
        options.out.table(tables.status_table(statuses, expected, rotation, live, views))
        if rotation is not None and options.strategy.preview.held:
            for line in out_of_rotation(nodes, rotation):
                options.out.line(view.piece(line))
    _say_errors(options, unread, as_json)
    wrong = _misdirected(options, nodes, rotation, as_json)
    unfinished = _unfinished(options, statuses, rotation, as_json)
    if live is not None:
        serve = _colours_serve(nodes, statuses, live)
        code = ExitCode.OK if serve and not wrong else ExitCode.NODE_FAILED
        return code, _calm(code, statuses, expected, live, unfinished)
    serving = all(state == State.UP for state in (rotation or {}).values())
    ok = serving and all(s.ok for s in statuses) and not wrong
    code = ExitCode.OK if ok else ExitCode.NODE_FAILED
    return code, _calm(code, statuses, expected, None, unfinished)


def _versions_status(
    options: Options, statuses: Sequence[Status], expected: str | None, as_json: bool
) -> tuple[ExitCode, bool]:
    """Parallel deployment: every version on every node, with its sessions; and whether
    a run has no end."""
    nodes = options.nodes
    versions: dict[str, list[Deployed]] = {}
    errors: list[str] = []
    from concurrent.futures import ThreadPoolExecutor

    from ..cluster.manager import Manager

    try:
        manager = Manager.for_nodes(nodes)
    except ConfigError as error:  # no password here: /status still says what serves
        manager, errors = None, [f"versions not listed: {error}"]
    if manager is not None:
        with ThreadPoolExecutor(max_workers=min(32, len(nodes))) as pool:
            found = list(pool.map(_versions_or_error(manager), nodes))
        for node, listed in zip(nodes, found, strict=True):
            if isinstance(listed, str):
                errors.append(listed)
            else:
                versions[node.label] = listed
    if as_json:
        options.out.write(tables.versions_json(statuses, versions, expected) + "\n")
    else:
        options.console.print(tables.versions_table(statuses, versions))
        for line in [*tables.held_lines(versions), *errors]:
            options.console.print(view.plain(line))
    unfinished = _unfinished(options, statuses, None, as_json)
    ok = all(s.ok for s in statuses) and not errors
    return (ExitCode.OK if ok else ExitCode.NODE_FAILED), unfinished


def _unfinished(
    options: Options,
    statuses: Sequence[Status],
    rotation: Mapping[str, State] | None,
    as_json: bool,
) -> bool:
    """Each run with no end, what its nodes run now and what to do; on stderr beside
    ``--json``, which stays the rows alone. Whether there was one."""
    runs = cutoff.unfinished(History(options.app.history_path))
    back = options.command("rollback")
    lines = [ln for run in runs for ln in cutoff.status_notice(run, statuses, rotation, back)]
    if as_json:
        sys.stderr.write("".join(f"{line}\n" for line in lines))
        return bool(runs)
    for line in lines:
        options.out.line(view.piece(line), soft_wrap=True)
    return bool(runs)


def _versions_or_error(manager: Manager) -> Callable[[NodeConfig], list[Deployed] | str]:
    def versions(node: NodeConfig) -> list[Deployed] | str:
        try:
            return manager.versions(node)
        except NodeError as error:
            return str(error)

    return versions


def out_of_rotation(nodes: tuple[NodeConfig, ...], rotation: dict[str, State]) -> list[str]:
    """Who took each node out of rotation (MAINT or DRAIN): a deploy run, whose mark is on
    the node and which the next run puts back, or someone else, whose stays out. Read
    over SSH from those nodes only, in parallel."""
    out = [node for node in nodes if rotation[node.label] in (State.MAINT, State.DRAIN)]
    if not out:
        return []
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(32, len(out))) as pool:
        return list(pool.map(lambda node: _who_took_out(node, rotation[node.label]), out))


def _who_took_out(node: NodeConfig, state: State) -> str:
    from ..cluster.node import Node

    reached = Node(node)
    try:
        mark = reached.taken_out()
    except NodeError as error:
        return f"{node.label}: {state} in haproxy; who took it out could not be read ({error})"
    finally:
        reached.close()
    if mark is None:
        return (
            f"{node.label}: {state} in haproxy, not taken out by deploy: deploys leave it "
            "out of rotation (deploy WAR --force puts it back)"
        )
    return (
        f"{node.label}: {state} in haproxy, taken out by {mark.describe()}: the next deploy "
        "or rollback puts it back once it verifies it"
    )


def live_colours(nodes: tuple[NodeConfig, ...], rotation: dict[str, State]) -> dict[str, bool]:
    """Blue/green: which colours take traffic, by haproxy's own state."""
    return {node.label: rotation[node.label].serving for node in nodes}


def _colours_serve(
    nodes: tuple[NodeConfig, ...], statuses: Sequence[Status], live: dict[str, bool]
) -> bool:
    """Every host has a live colour, and every live colour answers Ok."""
    ok = {status.host: status.ok for status in statuses}
    hosts = {node.host for node in nodes}
    serving = {node.host for node in nodes if live[node.label]}
    return serving == hosts and all(ok[label] for label, on in live.items() if on)


def _misdirected(
    options: Options,
    nodes: tuple[NodeConfig, ...],
    rotation: dict[str, State] | None,
    as_json: bool,
) -> list[str]:
    """Each node whose haproxy server sends its traffic elsewhere, as pre-flight checks
    it, said after the table (on stderr with --json): the table's haproxy column and
    what is live would be another node's."""
    balancer = options.balancers
    unread = rotation is None or all(s == State.UNREACHABLE for s in rotation.values())
    if balancer is None or unread:
        return []
    try:
        problems = balancer.mismatches(nodes)
    except NodeError:  # unreachable: the table says so already
        return []
    _say_errors(options, problems, as_json)
    return problems


def _say_errors(options: Options, problems: list[str], as_json: bool) -> None:
    """Below the table; on stderr with --json, whose stdout stays the rows alone."""
    for problem in problems:
        if as_json:
            print(f"error: {redact(problem)}", file=sys.stderr)
        else:
            options.out.line(("error:", "bold red"), (" ", ""), view.piece(problem))


def _views(
    options: Options, nodes: tuple[NodeConfig, ...]
) -> tuple[dict[str, dict[str, State]] | None, list[str]]:
    """Each balancer's states of the nodes (None without a load balancer in .config),
    and why each one that did not answer (it shows UNREACHABLE) could not be read."""
    balancers = options.balancers
    if balancers is None:
        return None, []
    views, unread = {}, []
    for member in balancers.members:
        try:
            views[member.name] = member.states(nodes)
        except NodeError as error:
            views[member.name] = {node.label: State.UNREACHABLE for node in nodes}
            unread.append(f"balancer {member.name} could not be read: {error}")
    return views, unread


def _worst(nodes: tuple[NodeConfig, ...], views: dict[str, dict[str, State]]) -> dict[str, State]:
    """Each node's state: the one furthest from serving of the balancers' views."""
    return {node.label: worst(view[node.label] for view in views.values()) for node in nodes}
