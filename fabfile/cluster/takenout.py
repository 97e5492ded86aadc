"""Who took a node out of haproxy's rotation: the tool's own mark, kept on the node.

haproxy keeps no note of who set a server to ``drain`` or ``maint``. An operator
who takes a node out (a disk to replace, a JVM to watch) means it to stay out,
while a node the tool took out (drained for its restart, left in maintenance
after a failure, or cut off mid-restart) is the tool's to put back once a run
verifies it. So before it drains a node, the tool writes a one-line mark in
the node's releases directory naming the run that took it out (who, which run),
and removes it once the node is back in rotation. A node out of rotation with
no mark was taken out by someone else: a run deploys it if asked but leaves it
as it found it, unless ``--force``.

The mark lives on the node, so every coordinator and every copy of the app
directory sees the same one.
"""

from __future__ import annotations

import dataclasses
import json
import shlex

from ..records.lock import Holder
from .balancer import State
from .layout import Layout
from .shell import sh_path

WORD = "taken-out"  # the holdings line that carries the mark


@dataclasses.dataclass(frozen=True)
class TakenOut:
    """The tool's mark: this node is out of rotation because a run took it out."""

    holder: Holder | None  # who ran it (None: a mark this version cannot read)
    token: str  # the run

    @classmethod
    def parse(cls, line: str) -> TakenOut:
        """A mark from its record; a damaged one still counts as the tool's."""
        try:
            data = json.loads(line)
            return cls(Holder(**data["holder"]), str(data["token"]))
        except (ValueError, TypeError, KeyError):
            return cls(None, "")

    def describe(self) -> str:
        """Who took it out, for a message."""
        holder = self.holder
        if holder is None:
            return "an earlier deploy run"
        return f"deploy run of {holder.user}@{holder.host} (pid {holder.pid}) since {holder.since}"


def mark_script(layout: Layout, instance: str, record: str, run: str) -> str:
    """Write the mark (``record``: who and which run), whole, through run ``run``'s own
    temporary name."""
    mark = sh_path(layout.taken_out(instance))
    new = sh_path(layout.taken_out_new(instance, run))
    return (
        f"mkdir -p {sh_path(layout.root)} && printf '%s\\n' {shlex.quote(record)} > {new} "
        f"&& mv -f {new} {mark}"
    )


def clear_script(layout: Layout, instance: str) -> str:
    """Remove the mark: the node is back in rotation."""
    return f"rm -f {sh_path(layout.taken_out(instance))}"


def read_script(layout: Layout, instance: str) -> str:
    """Print ``taken-out LINE`` when the node carries the mark."""
    mark = sh_path(layout.taken_out(instance))
    return f'[ -s {mark} ] && printf "{WORD} %s\\n" "$(head -n 1 {mark})"; true'


def parse(text: str) -> TakenOut | None:
    """The mark among a script's lines, if any."""
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word == WORD:
            return TakenOut.parse(rest)
    return None


def theirs(state: State, mark: TakenOut | None) -> bool:
    """Whether a node in ``state`` was taken out of rotation by someone else: out (MAINT
    or DRAIN) and without the tool's mark. Such a node stays out unless ``--force``."""
    return state in (State.MAINT, State.DRAIN) and mark is None
