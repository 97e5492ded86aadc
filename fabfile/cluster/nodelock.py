"""The deploy lock on one node: one run at a time there, from whichever coordinator
or copy of the app directory it comes.

``releases_dir/deploy.lock`` (`fabfile.cluster.layout`) is one line: when the lock was
taken, when it was last renewed and when its lease ends, in the node's own seconds
since boot, then the run's token and its holder (user, coordinator host, pid, command,
start) as JSON. Every change is made under ``flock`` on ``deploy.lock.mutex``, written
aside and renamed, so a reader never sees half a line and two takers never both win.
The holder renews the lease every `RENEW` seconds; a lock whose lease has ended by
the node's clock is stale (its run was killed, or cut off from the node), and the next
taker takes it over, saying whose it was. Nothing is judged from the holder's process:
it may run on another host.

Each script prints ``lock-WORD NOW [LINE]`` lines, which `answers` reads back.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Sequence

from ..records.lock import Holder
from .layout import Layout
from .shell import sh_path

LEASE = 20.0  # seconds a lock holds after its last renewal
RENEW = 5.0  # seconds between two renewals by the holder

TAKEN = "lock-taken"  # this run holds it now: taken, renewed, or taken over
HELD = "lock-held"  # another run holds it (read: the lock found, stale or not)
STALE = "lock-stale"  # a stale lock this run took over (its line follows)
ENDED = "lock-ended"  # taken over from a run that ended without releasing it (`take_script`)
RELEASED = "lock-released"
CLEARED = "lock-cleared"
KEPT = "lock-kept"  # left as it is: not this run's, or not stale, or changed meanwhile
FREE = "lock-free"
_WORDS = (TAKEN, HELD, STALE, ENDED, RELEASED, CLEARED, KEPT, FREE)

# The scripts run on every node of every run, and the holder's renewals every few
# seconds: each fork there costs a millisecond or more of a busy node's CPU, so they read
# with the shell's own ``read`` and judge in one ``awk`` (`_judge`).
_CLOCK = "now=; read -r now _ 2>/dev/null </proc/uptime || now=$(date +%s)"
_NO_FLOCK = "flock (util-linux) is not installed on the node; the deploy lock needs it"
_BUSY = "the deploy lock's mutex stayed busy for 10 s"


@dataclasses.dataclass(frozen=True)
class NodeLock:
    """A deploy lock as read from a node, judged by the node's own clock."""

    taken: float  # the node's seconds since boot when it was taken
    renewed: float  # ... when its holder last renewed it
    until: float  # ... when its lease ends
    token: str  # the run that holds it
    holder: Holder | None  # None: a damaged line, held by nobody known
    line: str  # the record as it stands on the node, to clear exactly this one
    now: float  # the node's clock when it was read

    @classmethod
    def parse(cls, line: str, now: float) -> NodeLock:
        """A lock from its line; a damaged one reads as stale, held by nobody known."""
        fields = line.strip().split(" ", 4)
        try:
            taken, renewed, until = (float(field) for field in fields[:3])
        except ValueError:
            taken = renewed = until = 0.0
        token = fields[3] if len(fields) > 3 else ""
        return cls(taken, renewed, until, token, _holder(fields[4:]), line.strip(), now)

    @property
    def stale(self) -> bool:
        """The lease has ended (or the node rebooted since): the scripts judge the same."""
        return self.now >= self.until or self.now < self.renewed

    def who(self) -> str:
        """``bob@coord-2 (pid 4711, `deploy app-1.2.war`) since 2026-05-01T03:12:09+00:00``."""
        holder = self.holder
        if holder is None:
            return f"an unknown holder (a damaged lock: {self.line[:80]!r})"
        return holder.describe()

    def how_long(self) -> str:
        """How long it has been held, and its lease, by the node's clock."""
        if self.stale:
            return (
                f"its lease ended {_seconds(self.now - self.until)} ago without renewal "
                "(that run was killed, or cut off from the node)"
            )
        held, renewed = _seconds(self.now - self.taken), _seconds(self.now - self.renewed)
        return (
            f"held for {held}, renewed {renewed} ago, its lease ends in "
            f"{_seconds(self.until - self.now)} unless renewed"
        )


@dataclasses.dataclass(frozen=True)
class Answer:
    """One line a lock script printed: its word, the node's clock, the lock it names."""

    word: str
    now: float
    lock: NodeLock | None


def answers(stdout: str) -> list[Answer]:
    """The ``lock-WORD`` lines of a script's output (other lines are left alone)."""
    found = []
    for line in stdout.splitlines():
        word, _, rest = line.partition(" ")
        clock, _, held = rest.partition(" ")
        if word not in _WORDS:
            continue
        try:
            now = float(clock)
        except ValueError:
            continue
        found.append(Answer(word, now, NodeLock.parse(held, now) if held.strip() else None))
    return found


def take_script(
    releases_dir: str,
    token: str,
    holder: Holder,
    lease: float = LEASE,
    ended: Sequence[str] = (),
) -> str:
    """Take the lock, renew it if run ``token`` holds it, or take over a stale one
    (printing ``lock-stale`` and its line first) or one of the runs ``ended`` (which
    recorded that they ended without releasing it: ``lock-ended``); then print
    ``lock-taken``. When another run holds it, print ``lock-held`` and its line and
    stop there (exit 0), so nothing appended to this script runs."""
    layout = Layout(releases_dir)
    lock, new = layout.word(layout.deploy_lock), layout.word(layout.deploy_lock_new)
    record = shlex.quote(json.dumps(dataclasses.asdict(holder), sort_keys=True))
    return "\n".join(
        [
            *_under_mutex(layout, create=True),
            _judge(token, ended, lease),
            "case $state in",
            f'  held) exec 8>&-; printf "{HELD} %s %s\\n" "$now" "$held"; exit 0 ;;',
            f'  stale) printf "{STALE} %s %s\\n" "$now" "$held" ;;',
            f'  ended) printf "{ENDED} %s %s\\n" "$now" "$held" ;;',
            "esac",
            'taken=$now; [ "$state" = mine ] && taken=${held%% *}',
            f'printf "%s %s %s %s %s\\n" "$taken" "$now" "$until" {shlex.quote(token)} {record} '
            f"> {new} && mv -f {new} {lock} || exit 1",
            "exec 8>&-",
            f'printf "{TAKEN} %s\\n" "$now"',
        ]
    )


def release_script(releases_dir: str, token: str) -> str:
    """Remove the lock if run ``token`` holds it; leave anyone else's."""
    layout = Layout(releases_dir)
    lock = layout.word(layout.deploy_lock)
    return "\n".join(
        [
            *_under_mutex(layout, create=False),
            _judge(token),
            f'if [ "$state" = mine ]; then rm -f {lock}; printf "{RELEASED} %s\\n" "$now"',
            f'elif [ -z "$held" ]; then printf "{FREE} %s\\n" "$now"',
            f'else printf "{KEPT} %s %s\\n" "$now" "$held"; fi',
        ]
    )


def clear_script(releases_dir: str, line: str, force: bool) -> str:
    """``deploy unlock``: remove the lock if it is still exactly ``line`` and stale (or
    ``force``); a lock renewed meanwhile differs from ``line`` and is kept. (The clock
    steps by 10 ms: a renewal within the same step writes the very same line, holder,
    lease and all, so there is nothing that could differ.)"""
    layout = Layout(releases_dir)
    lock = layout.word(layout.deploy_lock)
    allowed = '[ "$state" = stale ]' + (" || true" if force else "")
    return "\n".join(
        [
            *_under_mutex(layout, create=False),
            _judge(""),
            f'if [ -z "$held" ]; then printf "{FREE} %s\\n" "$now"',
            f'elif [ "$held" = {shlex.quote(line)} ] && {{ {allowed}; }}; then rm -f {lock}; '
            f'printf "{CLEARED} %s %s\\n" "$now" "$held"',
            f'else printf "{KEPT} %s %s\\n" "$now" "$held"; fi',
        ]
    )


def read_script(releases_dir: str) -> str:
    """Print the lock as it stands (``lock-held``, stale or not) or ``lock-free``; no
    mutex: the lock file is only ever replaced whole."""
    lock = sh_path(Layout(releases_dir).deploy_lock)
    return (
        f"{_CLOCK}; held=$(head -n 1 {lock} 2>/dev/null); "
        f'if [ -n "$held" ]; then printf "{HELD} %s %s\\n" "$now" "$held"; '
        f'else printf "{FREE} %s\\n" "$now"; fi'
    )


def _under_mutex(layout: Layout, create: bool) -> list[str]:
    """Set ``$d``, take the mutex on fd 8, read the clock and the lock line (``$held``).
    Without ``create``, a node with no releases directory holds no lock."""
    absent = f'[ -d "$d" ] || {{ {_CLOCK}; printf "{FREE} %s\\n" "$now"; exit 0; }}'
    return [
        layout.assign(),
        '[ -d "$d" ] || mkdir -p "$d" || exit 1' if create else absent,
        f"command -v flock >/dev/null 2>&1 || {{ echo {shlex.quote(_NO_FLOCK)} >&2; exit 3; }}",
        f"exec 8>>{layout.word(layout.deploy_lock_mutex)} || exit 1",
        f"flock -w 10 8 || {{ echo {shlex.quote(_BUSY)} >&2; exit 3; }}",
        _CLOCK,
        f"held=; IFS= read -r held 2>/dev/null <{layout.word(layout.deploy_lock)} || :",
    ]


def _judge(token: str, ended: Sequence[str] = (), lease: float = 0.0) -> str:
    """Set ``$state`` to free, mine (run ``token``'s), ended (one of the runs ``ended``),
    stale or held, by the node's clock, as `NodeLock.stale` judges (a damaged line has
    no lease: stale); and ``$until``, the clock plus ``lease``. One ``awk``, which reads
    the line from its environment (``-v`` would undo the backslashes of its JSON)."""
    program = (
        'BEGIN { split(ENVIRON["held"], f, " "); s = "held"; '
        'if (ENVIRON["held"] == "") s = "free"; else if (me != "" && f[4] == me) s = "mine"; '
        'else if (f[4] != "" && index(" " gone " ", " " f[4] " ")) s = "ended"; '
        'else if (n + 0 >= f[3] + 0 || n + 0 < f[2] + 0) s = "stale"; '
        'printf "%s %.2f", s, n + t }'
    )
    me, gone = shlex.quote(token), shlex.quote(" ".join(ended))
    return (
        f'judged=$(held="$held" awk -v n="$now" -v t={lease:.2f} -v me={me} -v gone={gone} '
        f"{shlex.quote(program)}); state=${{judged% *}} until=${{judged#* }}"
    )


def _holder(fields: list[str]) -> Holder | None:
    try:
        return Holder(**json.loads(fields[0]))
    except (IndexError, ValueError, TypeError):
        return None


def _seconds(value: float) -> str:
    """``7 s``, ``3 min 12 s``: a lock's age as people read it."""
    whole = max(0, round(value))
    minutes, seconds = divmod(whole, 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
