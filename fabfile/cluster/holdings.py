"""What a node holds: its HOME, free space, blobs, releases, restart claim and the
checksums of the files in place, read in one round trip during the pre-flight.

The script prints one ``WORD VALUE`` line per fact (``blob SHA256``, ``current
JSON``, ``release JSON``, ...), which `Holdings.parse` reads back; a damaged record
is skipped, as if the node did not hold it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..app.config import NodeConfig
from ..app.release import Release
from . import restartclaim
from .layout import Layout
from .restartclaim import Claim
from .shell import sh_path

_RECENT = 200  # releases.log lines read back: plenty for keep_releases


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

    def file(self, kind: str) -> str:
        """The checksum of the file the node has at that kind's path ('' when absent)."""
        return dict(self.files).get(kind, "")

    @staticmethod
    def script(config: NodeConfig, tidy: bool) -> str:
        """The one command that prints it all. ``tidy`` also creates the releases directory
        and removes partial uploads (a dry run changes nothing)."""
        layout = Layout.of(config)
        word = layout.word
        current, log = word(layout.current(config.instance)), word(layout.log)
        tidying = f"mkdir -p {word(layout.blobs)}; rm -f {layout.every_part()}; " if tidy else ""
        return (
            f"set -e; {layout.assign()}; {tidying}"
            'printf "home %s\\n" "$HOME"; '
            f'printf "free %s\\n" "$(df -Pk {word(layout.root)} | awk \'NR==2 {{print $4}}\')"; '
            f'for f in {layout.every_blob()}; do [ -e "$f" ] && '
            'printf "blob %s\\n" "${f##*/}"; done; '
            f'[ -f {current} ] && printf "current %s\\n" "$(cat {current})"; '
            f'for f in {layout.every_current()}; do [ -f "$f" ] && '
            'printf "held %s\\n" "$(cat "$f")"; done; '
            f"[ -f {log} ] && tail -n {_RECENT} {log} | sed 's/^/release /'; "
            + _checksum_script(config)
            + restartclaim.read_script(config.releases_dir)
        )

    @classmethod
    def parse(cls, text: str) -> Holdings:
        """The script's output, read back."""
        fields: dict[str, Any] = {"home": "", "free": 0, "blobs": set(), "current": None}
        fields |= {"claim": None, "installed": [], "held": [], "files": []}
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
        )


def _read_line(fields: dict[str, Any], word: str, rest: str) -> None:
    """One ``WORD VALUE`` line into ``fields``; a damaged record is skipped."""
    if word == "blob":
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
    elif word in ("home", "free"):
        fields[word] = rest


def _checksum_script(config: NodeConfig) -> str:
    """Print ``file KIND SHA256`` for each config file in place, to see hand edits."""
    c = config
    paths = {"config": c.config_path, "jettyrc": c.jettyrc_path, "logback": c.logback_path}
    return "".join(
        f"[ -f {sh_path(path)} ] && printf 'file {kind} %s\\n' "
        f'"$( (sha256sum || openssl dgst -sha256 -r) < {sh_path(path)} | cut -d" " -f1)"; '
        for kind, path in paths.items()
        if path
    )
