"""Whose releases directory it is: one app's, named in a small file on the node.

Two apps given the same ``releases_dir`` would overwrite each other's ``current``
and prune each other's blobs, and no coordinator can see the other app's
``.config`` (it may live on another coordinator). So the node says it: the
first pre-flight writes ``releases_dir/owner``, one JSON line naming the app
(its directory's name, its ``groupId:artifactId`` and where its ``.config``
is), and every later one compares. Copies of one app directory (two
coordinators, two people) are the same app: the WAR's coordinates decide.
"""

from __future__ import annotations

import dataclasses
import json
import shlex

from .layout import Layout
from .shell import sh_path

WORD = "owner"  # the holdings line that carries it


@dataclasses.dataclass(frozen=True)
class Owner:
    """The app a releases directory belongs to."""

    artifact: str  # groupId:artifactId, from the WAR: what makes two copies one app
    app: str = ""  # the app directory's name
    config: str = ""  # where its .config is: COORDINATOR:PATH

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, line: str) -> Owner | None:
        """An owner from its record; None for a damaged one (then it is claimed again)."""
        try:
            data = json.loads(line)
            return cls(str(data["artifact"]), str(data.get("app", "")), str(data.get("config", "")))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def same_app(self, other: Owner) -> bool:
        return self.artifact == other.artifact

    def describe(self) -> str:
        """For a message: ``g:a (app NAME, .config at HOST:PATH)``."""
        said = [
            f"app {self.app}" if self.app else "",
            f".config at {self.config}" if self.config else "",
        ]
        more = ", ".join(word for word in said if word)
        return f"{self.artifact} ({more})" if more else self.artifact


def read_script(layout: Layout) -> str:
    """Print ``owner LINE`` when the releases directory names its app."""
    owner = layout.word(layout.owner)
    return f'[ -s {owner} ] && printf "{WORD} %s\\n" "$(head -n 1 {owner})"; true'


def claim_script(layout: Layout, owner: Owner, run: str) -> str:
    """Name ``owner`` as the releases directory's app unless one is named already (the
    record written aside, then linked into place, which fails if one exists: whole, and
    only one app wins), then print ``owner LINE`` for whichever holds it."""
    mine = sh_path(layout.owner_new(run))
    return (
        f"mkdir -p {sh_path(layout.root)}; {layout.assign()}; "
        f"printf '%s\\n' {shlex.quote(owner.to_json())} > {mine} && "
        f"ln {mine} {layout.word(layout.owner)} 2>/dev/null; rm -f {mine}; " + read_script(layout)
    )


def parse(text: str) -> Owner | None:
    """The owner among a script's lines, if any."""
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word == WORD:
            return Owner.parse(rest)
    return None
