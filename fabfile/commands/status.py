"""``deploy``: every node's /status and haproxy state, probed in parallel."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from ..app.config import NodeConfig
from ..cluster import probe
from ..cluster.balancer import State
from ..cluster.manager import Deployed, Manager
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
from . import locks
from .options import Options


def status(options: Options, as_json: bool = False) -> ExitCode:
    """Print every node's /status (and haproxy state), probed in parallel, and the
    deploy lock where a run holds it (read over SSH meanwhile; with ``--json``, on
    stderr).

    Non-zero when a node is not Ok or is out of rotation: a node left in
    maintenance serves nobody, however well its /status answers. On a
    blue/green app the idle colour is out of rotation by design: non-zero
    when a host has no live colour, or its live colour is not Ok and UP.
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
    if live is not None:
        return ExitCode.OK if _colours_serve(nodes, statuses, live) else ExitCode.NODE_FAILED
    serving = all(state == State.UP for state in (rotation or {}).values())
    return ExitCode.OK if serving and all(s.ok for s in statuses) else ExitCode.NODE_FAILED


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
    return ExitCode.OK if all(s.ok for s in statuses) and not errors else ExitCode.NODE_FAILED


def _versions_or_error(manager: Manager) -> Callable[[NodeConfig], list[Deployed] | str]:
    def versions(node: NodeConfig) -> list[Deployed] | str:
        try:
            return manager.versions(node)
        except NodeError as error:
            return str(error)

    return versions


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


def _rotation(options: Options, nodes: tuple[NodeConfig, ...]) -> dict[str, State] | None:
    """Each node's haproxy state, None without a load balancer in .config."""
    balancer = options.balancer(nodes)
    if balancer is None:
        return None
    try:
        return balancer.states(nodes)
    except NodeError:
        return {node.label: State.UNREACHABLE for node in nodes}
