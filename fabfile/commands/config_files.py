"""``deploy config diff`` and ``deploy config history``: the config files on the
nodes against ours, and every version the coordinator saw.
"""

from __future__ import annotations

import dataclasses
import json

from ..cluster import drift
from ..cluster.node import Node
from ..errors import (
    ExitCode,
)
from ..records.archive import Archive
from ..view import console as view
from ..view import tables
from .options import Options


def config_diff(options: Options, as_json: bool = False) -> ExitCode:
    """What each node's config files differ in from what the coordinator would send it.

    Exit 0 when every node has what it would be sent, 1 when one differs (drift)
    or cannot be read."""
    app = options.app
    files = app.overrides()
    merged = {host: files.files(host) for host in app.config.hosts}
    nodes = [Node(config) for config in options.nodes]
    try:
        found = drift.compare_all(nodes, merged, options.strategy.versioned)
    finally:
        for node in nodes:
            node.close()
    errors = [item for item in found if isinstance(item, str)]
    drifts = [item for item in found if not isinstance(item, str)]
    if as_json:
        shown = [d.to_dict() for d in drifts] + [{"error": e} for e in errors]
        options.console.file.write(json.dumps(shown, indent=2) + "\n")
    else:
        _print_drift(options.console, drifts, errors)
    bad = errors or any(d.diff for d in drifts)
    return ExitCode.NODE_FAILED if bad else ExitCode.OK


def _print_drift(console: view.Out, drifts: list[drift.FileDrift], errors: list[str]) -> None:
    for item in drifts:
        if item.diff:
            console.print(view.plain(item.diff.rstrip("\n")))
    changed = sorted({f"{d.node}: {d.name}" for d in drifts if d.diff})
    for error in errors:
        console.print(view.plain(f"not read: {error}"))
    if changed:
        console.print(view.plain(f"drift: {', '.join(changed)}; a deploy puts the files back"))
    elif not errors:
        console.print(f"no drift: {len(drifts)} file(s) on the nodes are what deploy would send")


def config_history(options: Options, limit: int = 20, as_json: bool = False) -> ExitCode:
    """Every version of the config files the coordinator saw, newest last."""
    versions = Archive(options.app.path).versions()[-limit:]
    if as_json:
        rows = [dataclasses.asdict(v) for v in versions]
        options.console.file.write(json.dumps(rows, indent=2) + "\n")
    elif not versions:
        options.console.print("no configuration files archived yet")
    else:
        options.console.print(tables.config_table(Archive(options.app.path), versions))
    return ExitCode.OK
