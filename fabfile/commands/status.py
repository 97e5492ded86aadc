"""``deploy``: every node's /status and haproxy state, probed in parallel."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from ..app.config import NodeConfig
from ..app.credentials import redact
from ..cluster import probe
from ..cluster.balancer import State
from ..cluster.manager import Deployed, Manager
from ..cluster.node import Node
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
from . import cutoff, locks
from .options import Options


def status(options: Options, as_json: bool = False) -> ExitCode:
    """Print every node's /status (and haproxy state), probed in parallel, and the
    deploy lock where a run holds it (read over SSH meanwhile; with ``--json``, on
    stderr).

    Non-zero when a node is not Ok or is out of rotation: a node left in
    maintenance serves nobody, however well its /status answers. On a
    blue/green app the idle colour is out of rotation by design: non-zero
    when a host has no live colour, or its live colour is not Ok and UP.
    Non-zero too when haproxy's server for a node sends traffic elsewhere (a
    swapped status_url or lb_server): the table would show another node's state.
    A run with no end (cut off, or still running) is told below the table.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        found = pool.submit(locks.read, options.nodes)
        code = _status(options, as_json)
        shown = locks.lines(found.result())
    for line in shown:
        if as_json:
            sys.stderr.write(line + "\n")
        else:
            options.console.print(view.plain(line))
    return code


def _status(options: Options, as_json: bool) -> ExitCode:
    nodes = options.nodes
    statuses = probe.probe_all(nodes)
    current = History(options.app.history_path).current()
    expected = current.version if current else None
    if options.strategy.status is Columns.VERSIONS:
        return _versions_status(options, statuses, expected, as_json)
    rotation = _rotation(options, nodes)
    colours = options.strategy.status is Columns.COLOURS
    live = live_colours(nodes, rotation) if colours and rotation is not None else None
    if as_json:
        options.console.file.write(tables.status_json(statuses, expected, rotation, live) + "\n")
    else:
        options.console.print(tables.status_table(statuses, expected, rotation, live))
        if rotation is not None and options.strategy.preview.held:
            for line in out_of_rotation(nodes, rotation):
                options.console.print(view.plain(line))
    wrong = _misdirected(options, nodes, rotation, as_json)
    _unfinished(options, statuses, rotation, as_json)
    if live is not None:
        serve = _colours_serve(nodes, statuses, live)
        return ExitCode.OK if serve and not wrong else ExitCode.NODE_FAILED
    serving = all(state == State.UP for state in (rotation or {}).values())
    ok = serving and all(s.ok for s in statuses) and not wrong
    return ExitCode.OK if ok else ExitCode.NODE_FAILED


def _versions_status(
    options: Options, statuses: Sequence[Status], expected: str | None, as_json: bool
) -> ExitCode:
    """Parallel deployment: every version on every node, with its sessions."""
    nodes = options.nodes
    versions: dict[str, list[Deployed]] = {}
    errors: list[str] = []
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
        options.console.file.write(tables.versions_json(statuses, versions, expected) + "\n")
    else:
        options.console.print(tables.versions_table(statuses, versions))
        for line in [*tables.held_lines(versions), *errors]:
            options.console.print(view.plain(line))
    _unfinished(options, statuses, None, as_json)
    return ExitCode.OK if all(s.ok for s in statuses) and not errors else ExitCode.NODE_FAILED


def _unfinished(
    options: Options,
    statuses: Sequence[Status],
    rotation: Mapping[str, State] | None,
    as_json: bool,
) -> None:
    """Each run with no end, what its nodes run now and what to do; on stderr beside
    ``--json``, which stays the rows alone."""
    runs = cutoff.unfinished(History(options.app.history_path))
    back = options.command("rollback")
    lines = [ln for run in runs for ln in cutoff.status_notice(run, statuses, rotation, back)]
    if as_json:
        sys.stderr.write("".join(f"{line}\n" for line in lines))
        return
    for line in lines:
        options.console.print(view.plain(line), soft_wrap=True)


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
    with ThreadPoolExecutor(max_workers=min(32, len(out))) as pool:
        return list(pool.map(lambda node: _who_took_out(node, rotation[node.label]), out))


def _who_took_out(node: NodeConfig, state: State) -> str:
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
    balancer = options.balancer(nodes)
    unread = rotation is None or all(s == State.UNREACHABLE for s in rotation.values())
    if balancer is None or unread:
        return []
    try:
        problems = balancer.mismatches(nodes)
    except NodeError:  # unreachable: the table says so already
        return []
    for problem in problems:
        if as_json:
            print(f"error: {redact(problem)}", file=sys.stderr)
        else:
            options.console.print(f"[bold red]error:[/] {view.plain(problem)}")
    return problems


def _rotation(options: Options, nodes: tuple[NodeConfig, ...]) -> dict[str, State] | None:
    """Each node's haproxy state, None without a load balancer in .config."""
    balancer = options.balancer(nodes)
    if balancer is None:
        return None
    try:
        return balancer.states(nodes)
    except NodeError:
        return {node.label: State.UNREACHABLE for node in nodes}
