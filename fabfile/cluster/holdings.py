"""What a node holds: its HOME, free space, blobs, releases, restart claim and the
checksums of the files in place, read in one round trip during the pre-flight.

The script prints one ``WORD VALUE`` line per fact (``blob SHA256``, ``current
JSON``, ``release JSON``, ...), which `Holdings.parse` reads back; a damaged record
is skipped, as if the node did not hold it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ..app.config import NodeConfig
from ..app.release import Release
from . import become, ownership, restartclaim, takenout
from .layout import Layout, is_temporary
from .ownership import Owner
from .restartclaim import Claim
from .shell import sh_path
from .takenout import TakenOut

_RECENT = 200  # releases.log lines read back: plenty for keep_releases
_INSTANCE = "instance"  # the line that starts one instance's facts in `every_script`
# the facts of the releases directory a host's instances share: `every_script` reads them once
SHARED = frozenset({"home", "free", "blob", "held", "release", "claim", "owner"})


@dataclasses.dataclass(frozen=True)
class Holdings:
    """What a node holds, read in one round trip during the pre-flight."""

    home: str
    free_kib: int
    blobs: frozenset[str]
    current: Release | None
    installed: tuple[Release, ...]  # releases.log, oldest first: what pruning keeps
    claim: Claim | None = None  # a restart claim found on the node (`fabfile.cluster.restartclaim`)
    held: tuple[Release, ...] = ()  # what every instance on the node runs: pruning keeps it
    # checksums of the files at config_path, jettyrc_path and logback_path ('' if absent)
    files: tuple[tuple[str, str], ...] = ()
    # the tool's mark that a run took the instance out of rotation (`fabfile.cluster.takenout`)
    taken_out: TakenOut | None = None
    owner: Owner | None = None  # the app the releases directory belongs to, if it says
    # with become_user: what sudo said when asked to run without a password ('ok': it did)
    become: str | None = None

    def file(self, kind: str) -> str:
        """The checksum of the file the node has at that kind's path ('' when absent)."""
        return dict(self.files).get(kind, "")

    @staticmethod
    def script(config: NodeConfig, tidy: bool, locked: bool = False, shared: bool = True) -> str:
        """The one command that prints it all. ``tidy`` also creates the releases directory
        and removes what dead runs left half done (a dry run changes nothing); ``locked``:
        run under this run's deploy lock, so every other run's temporary file is a dead
        one's, whatever its age. Without ``shared``, only the instance's own facts: those
        of the releases directory every instance on the host shares (`SHARED`) are another
        instance's to read and tidy (`every_script`)."""
        layout = Layout.of(config)
        word, sudo = layout.word, become.prefix(config.become_user)
        current, log = word(layout.current(config.instance)), word(layout.log)
        stale = layout.stale_temporaries(_targets(config), locked, sudo, shared)
        blobs = word(layout.blobs)
        made = f"[ -d {blobs} ] || mkdir -p {blobs}; " if shared else ""
        tidying = f"{made}{stale}; " if tidy else ""
        own = f'[ -f {current} ] && {_LINE} <{current} && printf "current %s\\n" "$line"; '
        if not shared:
            return (
                f"set -e; {layout.assign()}; {become.check_script(config.become_user)}{tidying}"
                + own
                + _checksum_script(config)
                + takenout.read_script(layout, config.instance)
            )
        return (
            f"set -e; {layout.assign()}; {become.check_script(config.become_user)}{tidying}"
            'printf "home %s\\n" "$HOME"; '
            f'printf "free %s\\n" "$({layout.free_kib()})"; '
            f'for f in {layout.every_blob()}; do [ -e "$f" ] && '
            'printf "blob %s\\n" "${f##*/}"; done; '
            + own
            + f'for f in {layout.every_current()}; do [ -f "$f" ] && '
            f'{_LINE} <"$f" && printf "held %s\\n" "$line"; done; '
            f"[ -f {log} ] && tail -n {_RECENT} {log} | sed 's/^/release /'; "
            + _checksum_script(config)
            + restartclaim.read_script(config.releases_dir)
            + "; "
            + takenout.read_script(layout, config.instance)
            + "; "
            + ownership.read_script(layout)
        )

    @classmethod
    def parse(cls, text: str) -> Holdings:
        """The script's output, read back."""
        fields: dict[str, Any] = {"home": "", "free": 0, "blobs": set(), "current": None}
        fields |= {"claim": None, "installed": [], "held": [], "files": [], "taken_out": None}
        fields["owner"] = None
        fields["become"] = None
        for line in text.splitlines():
            word, _, rest = line.partition(" ")
            _read_line(fields, word, rest)
        return cls(
            home=fields["home"],
            free_kib=int(fields["free"] or 0),
            blobs=frozenset(fields["blobs"]),
            current=fields["current"],
            installed=tuple(fields["installed"]),
            claim=fields["claim"],
            held=tuple(fields["held"]),
            files=tuple(fields["files"]),
            taken_out=fields["taken_out"],
            owner=fields["owner"],
            become=fields["become"],
        )


def every_script(configs: Sequence[NodeConfig], tidy: bool, locked: bool = False) -> str:
    """`Holdings.script` for every instance of one host, in one command: a host's
    instances share its releases directory and connection, so one round trip reads them
    all (each instance's facts after an ``instance N`` line). What they share (`SHARED`)
    is read and tidied once, with the first; `by_label` gives it to the others (every
    command is a fork on the node, and a busy node makes each one slow)."""
    return "\n".join(
        f"printf '{_INSTANCE} {i}\\n'\n{Holdings.script(config, tidy, locked, shared=i == 0)}"
        for i, config in enumerate(configs)
    )


def by_label(configs: Sequence[NodeConfig], text: str) -> dict[str, Holdings]:
    """`every_script`'s output, read back: each instance's holdings by its label (an
    instance whose facts are missing is left out, to be read on its own)."""
    parts: dict[int, list[str]] = {}
    lines: list[str] | None = None
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word == _INSTANCE and rest.isdigit():
            lines = parts.setdefault(int(rest), [])
        elif lines is not None:
            lines.append(line)
    first = parts.get(0, [])
    shared = [line for line in first if line.partition(" ")[0] in SHARED]
    return {
        config.label: Holdings.parse("\n".join(parts[i] if i == 0 else [*shared, *parts[i]]))
        for i, config in enumerate(configs)
        if i in parts and (i == 0 or shared)
    }


def _read_line(fields: dict[str, Any], word: str, rest: str) -> None:
    """One ``WORD VALUE`` line into ``fields``; a damaged record is skipped."""
    if word == "blob":
        if not is_temporary(rest):  # another run's upload still arriving: not a blob yet
            fields["blobs"].add(rest)
    elif word == "current":
        fields["current"] = Release.from_json(rest)
    elif word == "release" and (release := Release.from_json(rest)) is not None:
        fields["installed"].append(release)
    elif word == "claim":
        fields["claim"] = Claim.parse(rest)
    elif word == "held" and (release := Release.from_json(rest)) is not None:
        fields["held"].append(release)
    elif word == "file":
        kind, _, sha = rest.partition(" ")
        fields["files"].append((kind, sha))
    elif word == ownership.WORD:
        fields["owner"] = Owner.parse(rest)
    elif word == takenout.WORD:
        fields["taken_out"] = TakenOut.parse(rest)
    elif word in ("home", "free", become.WORD):
        fields[word] = rest


# A file's first line into $line by the shell itself (a ``$(cat ...)`` is a fork, and
# the holdings are read on every node in every pre-flight); a last line without its
# newline counts too.
_LINE = '{ line=; IFS= read -r line || [ -n "$line" ]; }'


def _targets(config: NodeConfig) -> tuple[str, ...]:
    """The paths outside ``releases_dir`` that releases are copied beside, then over."""
    c = config
    return tuple(p for p in (c.war_path, c.config_path, c.jettyrc_path, c.logback_path) if p)


def _checksum_script(config: NodeConfig) -> str:
    """Print ``file KIND SHA256`` for each config file in place, to see hand edits (read
    as ``become_user``: an admin's ``chmod 600`` may keep the SSH user out). Two forks a
    file where ``cat | sha256sum | cut`` took five: every pre-flight runs it. A file it
    cannot read answers '' (not what was deployed), as an absent one does."""
    c = config
    paths = {"config": c.config_path, "jettyrc": c.jettyrc_path, "logback": c.logback_path}
    sudo = become.prefix(c.become_user)
    digest = "(sha256sum || openssl dgst -sha256 -r)"
    lines = []
    for kind, path in paths.items():
        if not path:
            continue
        file = sh_path(path)
        # the leading space: `$( (` is a subshell in a substitution, `$((` arithmetic
        summed = (
            f"{sudo}cat {file} 2>/dev/null | {digest}" if sudo else f" {digest} 2>/dev/null <{file}"
        )
        said = f"printf 'file {kind} %s\\n' \"${{s%% *}}\""
        lines.append(f"[ -f {file} ] && {{ s=$({summed}) || s=; {said}; }}; ")
    return "".join(lines)
