"""Drift: the config files a node has now against what the coordinator would send it.

A hand edit on a node (a heap size changed in a hurry, a property "just for
today") is invisible until the next restart bites. `deploy config diff` and
`deploy --dry-run` read each node's files over SSH and show a unified diff
against the host's merged files (`fabfile.app.overrides`).
"""

from __future__ import annotations

import dataclasses
import difflib
import shlex
from concurrent.futures import ThreadPoolExecutor

from ..app.config import NodeConfig
from ..app.overrides import File, HostFiles
from ..errors import NodeError
from .layout import VERSION_CONFIG, Layout
from .node import Node
from .shell import sh_path

_LIMIT = 1 << 20  # config files are small; a huge one is shown cut


@dataclasses.dataclass(frozen=True)
class FileDrift:
    """One file of one node: where it is, and the diff ('' when the node has what we'd send)."""

    node: str
    name: str
    path: str
    diff: str

    def to_dict(self) -> dict[str, str | bool]:
        return {**dataclasses.asdict(self), "drift": bool(self.diff)}


def compare(node: Node, files: HostFiles, in_version: bool) -> list[FileDrift]:
    """Each of the node's config files against ``files``, read in one round trip; raises
    `NodeError` if unreadable. ``in_version``: config.properties lives inside each version
    the node holds, not at config_path (the strategy says so: `Strategy.versioned`)."""
    config = node.config
    wanted = [(files.config, config.config_path), (files.jettyrc, config.jettyrc_path)]
    if files.logback is not None and config.logback_path:
        wanted.append((files.logback, config.logback_path))
    words = [sh_path(path) for _, path in wanted]
    before = ""
    if in_version:  # config.properties is inside each version: the newest's
        layout = Layout.of(config)
        versions = sh_path(layout.versions)
        before = f"v=$(ls -d {versions}/*/ 2>/dev/null | sort | tail -n 1); v=${{v:-/none/}}"
        words[0] = f'"$v"{shlex.quote(VERSION_CONFIG)}'
        newest = layout.version("NEWEST")  # as shown: the shell finds which it is
        wanted[0] = (files.config, f"{newest}/{VERSION_CONFIG}")
    found = node.read_files(words, before, _LIMIT)
    return [
        FileDrift(config.label, file.name, path, _diff(file, have, config, path))
        for (file, path), have in zip(wanted, found, strict=True)
    ]


def _diff(file: File, have: bytes | None, config: NodeConfig, path: str) -> str:
    if have == file.data:
        return ""
    ours = file.data.decode("latin-1").splitlines(keepends=True)
    theirs = [] if have is None else have.decode("latin-1").splitlines(keepends=True)
    lines = difflib.unified_diff(
        theirs,
        ours,
        fromfile=f"{config.label}:{path}" + (" (missing)" if have is None else ""),
        tofile=f"coordinator: {file.name} for {config.host}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def compare_all(
    nodes: list[Node], merged: dict[str, HostFiles], in_version: bool
) -> list[FileDrift | str]:
    """Every node's files, read at once, or the error that kept us from reading them."""

    def one(node: Node) -> list[FileDrift | str]:
        try:
            return list(compare(node, merged[node.host], in_version))
        except NodeError as error:
            return [str(error)]

    with ThreadPoolExecutor(max_workers=min(32, len(nodes) or 1)) as pool:
        return [item for found in pool.map(one, nodes) for item in found]
