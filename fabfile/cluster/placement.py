"""Putting staged files in place on a node, all or nothing, and recording the release.

The shell lines `fabfile.cluster.node.Node` sends to install a release: each file
copied from ``blobs/`` beside its target under a hidden name, then all of them
renamed over their targets, then the release written as the instance's ``current``
and appended to ``releases.log``. ``$d`` is the releases directory (`Layout.assign`).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from ..app.config import NodeConfig
from ..app.release import Release
from . import become
from .layout import Layout, hidden_beside, parent, prepared
from .shell import sh_path

CHANGED = become.CHANGED
CHANGED_EXIT = become.CHANGED_EXIT
Staged = tuple[str, str, str]  # (blob's checksum, target path, hidden temporary beside it)


def staged(
    config: NodeConfig, release: Release, only: tuple[str, ...] = (), run: str = ""
) -> list[Staged]:
    """The release's files that go somewhere on this node, the WAR last; ``only`` the
    kinds named, when given. Each temporary copy is run ``run``'s own."""
    files = (
        ("config", release.config, config.config_path),
        ("jettyrc", release.jettyrc, config.jettyrc_path),
        ("logback", release.logback, config.logback_path),
        ("war", release.war, config.war_path),
    )
    return [
        (sha, target, hidden_beside(target, run))
        for kind, sha, target in files
        if sha and target and kind in (only or (kind,))
    ]


def placing(layout: Layout, files: list[Staged], user: str = "", run: str = "") -> list[str]:
    """Shell lines that copy each blob beside its target, check the copy's checksum,
    then rename them all over their targets; a failure removes the copies. Each copy
    takes its target's mode and owner (`become.PUT`); as ``user`` when one is named.
    A copy run ``run`` made already (`preparing`) is taken as it is: it was checked."""
    ready = [prepared(target, run, sha) for sha, target, _ in files] if run else []
    temps = " ".join(sh_path(path) for path in [*(tmp for _, _, tmp in files), *ready])
    cleanup = f"{become.prefix(user)}rm -f {temps}"
    lines = ["set -e", layout.assign(), become.PUT]
    lines.append(f"trap {shlex.quote(cleanup)} EXIT")
    for sha, target, tmp in files:
        copy = put(layout, sha, target, tmp, user)
        if run:
            made = sh_path(prepared(target, run, sha))
            copy = (
                f"if [ -f {made} ]; then {become.prefix(user)}mv -f {made} {sh_path(tmp)}; "
                f"else {copy}; fi"
            )
        lines.append(copy)
    return lines + [
        f"{become.prefix(user)}mv -f {sh_path(tmp)} {sh_path(target)}" for _, target, tmp in files
    ]


def preparing(
    layout: Layout, files: list[Staged], user: str, run: str, fresh: frozenset[str] = frozenset()
) -> list[str]:
    """Shell lines that make run ``run``'s checked copy of each blob beside its target
    (`prepared`), as `placing` would, but rename none over its target: done for every
    node before the first one's turn, it leaves the turn only the renames. A copy gets
    its prepared name only once its checksum was checked, so a cut-off script leaves
    nothing the install would trust. The ``fresh`` blobs were just sent unchecked: each
    is copied from its part file, which the copy's check proves, then renamed a blob."""
    lines = ["set -e", layout.assign(), become.PUT]
    temps = " ".join(sh_path(tmp) for _, _, tmp in files)
    lines.append(f"trap {shlex.quote(f'{become.prefix(user)}rm -f {temps}')} EXIT")
    for sha, target, tmp in files:
        part = layout.word(layout.part(sha, run)) if sha in fresh else ""
        lines.append(put(layout, sha, target, tmp, user, part))
        lines.append(
            f"{become.prefix(user)}mv -f {sh_path(tmp)} {sh_path(prepared(target, run, sha))}"
        )
    return lines


def discarding(files: list[Staged], user: str, run: str) -> str:
    """A shell line removing run ``run``'s prepared copies of ``files`` (a run that
    stopped before the node's turn)."""
    made = " ".join(sh_path(prepared(target, run, sha)) for sha, target, _ in files)
    return f"{become.prefix(user)}rm -f {made}"


def put(layout: Layout, sha: str, target: str, tmp: str, user: str, part: str = "") -> str:
    """A shell line (after `become.PUT`) that writes blob ``sha`` at ``tmp`` beside
    ``target`` as ``user``, from stdin; a blob that changed on the node is removed
    and named (`CHANGED SHA NOW`, exit `CHANGED_EXIT`), as `checked` does. With
    ``part`` (a shell word: the blob's part file, sent unchecked), the copy is made
    from it while it is there, and once the copy is checked it becomes the blob."""
    blob = layout.word(layout.blob(sha))
    words = " ".join(sh_path(w) for w in (tmp, target, parent(target)))
    size = "big" if target.endswith(".war") else "small"
    source, before, after = blob, "", ""
    if part:  # the part is gone once another line (or a run before) made it the blob
        source, before = '"$src"', f"src={blob}; [ -f {part} ] && src={part}; "
        after = f'; [ "$src" = {blob} ] || mv -f {part} {blob}'
    return (
        f"{before}{become.calling(user)} {shlex.quote(sha)} {words} {size} < {source} "
        f'|| {{ rc=$?; [ "$rc" -ne {CHANGED_EXIT} ] || rm -f {source}; exit "$rc"; }}{after}'
    )


def checksum(word: str) -> str:
    """A shell expression: the sha256 of the file ``word`` (one shell word) names.
    openssl uses the CPU's SHA instructions (3x faster here); sha256sum if absent."""
    return f"$( (openssl dgst -sha256 -r {word} 2>/dev/null || sha256sum {word}) | cut -d' ' -f1)"


def checked(layout: Layout, sha: str, copy: str) -> str:
    """A shell line that checks ``copy`` (one shell word), just copied from blob ``sha``,
    has that checksum. If not, the blob changed on the node since it was staged (an edit
    in place, a damaged disk): the blob is removed, so nothing trusts it by its name again,
    the line `CHANGED SHA NOW` says so and the script exits `CHANGED_EXIT`."""
    blob, want = layout.word(layout.blob(sha)), shlex.quote(sha)
    return (
        f"s={checksum(copy)}; "
        f'[ "$s" = {want} ] || {{ rm -f {copy} {blob}; '
        f'printf "{CHANGED} %s %s\\n" {want} "$s"; exit {CHANGED_EXIT}; }}'
    )


def checking(layout: Layout, shas: Iterable[str]) -> str:
    """A script that hashes each staged blob of ``shas`` the node holds; one that does
    not match its name is removed and named (`CHANGED SHA NOW`), to be sent again."""
    lines = [layout.assign()]
    for sha in sorted(shas):
        blob, want = layout.word(layout.blob(sha)), shlex.quote(sha)
        lines.append(
            f'[ -f {blob} ] && s={checksum(blob)} && [ "$s" != {want} ] && rm -f {blob} && '
            f'printf "{CHANGED} %s %s\\n" {want} "$s"'
        )
    return "\n".join([*lines, "true"])


def changed(stdout: str) -> dict[str, str]:
    """The blobs a script found changed: checksum named -> checksum found."""
    found = {}
    for line in stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == CHANGED:
            sha, _, now = rest.partition(" ")
            found[sha] = now
    return found


def recording(layout: Layout, instance: str, release: Release, run: str = "") -> list[str]:
    """Shell lines that make ``release`` what ``instance`` runs, replacing its record
    atomically (through run ``run``'s own temporary), and append it to the log."""
    record = shlex.quote(release.node_record())
    current = layout.word(layout.current(instance))
    new = layout.word(layout.current_new(instance, run))
    return [
        f'printf "%s\\n" {record} > {new}',
        f"mv -f {new} {current}",
        f'printf "%s\\n" {record} >> {layout.word(layout.log)}',
    ]
