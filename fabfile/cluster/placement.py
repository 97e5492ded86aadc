"""Putting staged files in place on a node, all or nothing, and recording the release.

The shell lines `fabfile.cluster.node.Node` sends to install a release: each file
copied from ``blobs/`` beside its target under a hidden name, then all of them
renamed over their targets, then the release written as the instance's ``current``
and appended to ``releases.log``. ``$d`` is the releases directory (`Layout.assign`).
"""

from __future__ import annotations

import shlex

from ..app.config import NodeConfig
from ..app.release import Release
from .layout import Layout, hidden_beside, parent
from .shell import sh_path

Staged = tuple[str, str, str]  # (blob's checksum, target path, hidden temporary beside it)


def staged(config: NodeConfig, release: Release, only: tuple[str, ...] = ()) -> list[Staged]:
    """The release's files that go somewhere on this node, the WAR last; ``only`` the
    kinds named, when given."""
    files = (
        ("config", release.config, config.config_path),
        ("jettyrc", release.jettyrc, config.jettyrc_path),
        ("logback", release.logback, config.logback_path),
        ("war", release.war, config.war_path),
    )
    return [
        (sha, target, hidden_beside(target))
        for kind, sha, target in files
        if sha and target and kind in (only or (kind,))
    ]


def placing(layout: Layout, files: list[Staged]) -> list[str]:
    """Shell lines that copy each blob beside its target, then rename them all over
    their targets; a failure removes the copies."""
    temps = " ".join(sh_path(tmp) for _, _, tmp in files)
    lines = ["set -e", layout.assign(), f"trap {shlex.quote(f'rm -f {temps}')} EXIT"]
    for sha, target, tmp in files:
        lines.append(f"mkdir -p {sh_path(parent(target))}")
        lines.append(f"cp {layout.word(layout.blob(sha))} {sh_path(tmp)}")
    return lines + [f"mv -f {sh_path(tmp)} {sh_path(target)}" for _, target, tmp in files]


def recording(layout: Layout, instance: str, release: Release) -> list[str]:
    """Shell lines that make ``release`` what ``instance`` runs, replacing its record
    atomically, and append it to the log."""
    record = shlex.quote(release.to_json())
    current = layout.word(layout.current(instance))
    new = layout.word(layout.current_new(instance))
    return [
        f'printf "%s\\n" {record} > {new}',
        f"mv -f {new} {current}",
        f'printf "%s\\n" {record} >> {layout.word(layout.log)}',
    ]
