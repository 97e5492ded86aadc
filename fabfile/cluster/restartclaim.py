"""One restart at a time on a node, whoever starts it.

Two restarts that overlap on one node (an interrupted run followed by another,
two coordinators, a person on the node) can start two JVMs: one binds the port
and nothing manages it any more. So the restart command runs only under a
*claim*, a one-line file in the node's releases directory written under
``flock``: when the claim was taken (the node's boot clock), when it stops
holding, and who took it. The tool removes its claim once the new JVM is
verified or has failed; a claim left by a run that was interrupted after its
restart command still holds until the node shows that restart is over (a JVM
started after the claim holds the status port), or until it expires.

A claim found in the way is waited for, bounded, and the wait is said.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import socket

from ..records.lock import Holder
from .layout import Layout
from .portowner import PortReport
from .shell import sh_path

BUSY = "restart-claim-busy"
CLAIMED = "restart-claim-taken"
RELEASED = "restart-claim-released"  # the restart command failed: the claim is gone
BUSY_EXIT = 75


@dataclasses.dataclass(frozen=True)
class Claim:
    """A restart claim as read from a node."""

    at: float  # the node's seconds since boot when the restart was claimed
    expires: float  # ... after which the claim no longer holds
    holder: Holder | None
    token: str  # the run that took it
    line: str  # the record as it stands on the node, to take over exactly this one

    @classmethod
    def parse(cls, line: str) -> Claim | None:
        """A claim from its record; a damaged one still counts, as held by nobody known."""
        fields = line.strip().split(" ", 2)
        if len(fields) < 2:
            return None
        try:
            at, expires = float(fields[0]), float(fields[1])
        except ValueError:
            return None
        holder, token = _who(fields[2] if len(fields) > 2 else "")
        return cls(at, expires, holder, token, line.strip())

    def describe(self) -> str:
        holder = self.holder
        if holder is None:
            return "an unknown holder"
        return f"{holder.user}@{holder.host} (pid {holder.pid}, `{holder.command}`)"

    def in_flight(self, report: PortReport, run: str) -> bool:
        """Whether this claim still holds, seen from run ``run`` at ``report``'s moment."""
        now = report.uptime
        if now >= self.expires or now < self.at:  # expired, or the node rebooted since
            return False
        if self.token == run:
            return False  # our own: a retry of this very run
        if self._holder_alive():
            return True
        # Its run is gone (interrupted, killed): the restart it issued may still be
        # under way, until a JVM that started after the claim holds the port.
        return not any(listener.started > self.at for listener in report.listeners)

    def _holder_alive(self) -> bool:
        holder = self.holder
        if holder is None:
            return True  # unknown: only expiry ends it
        if holder.host == socket.gethostname() and holder.pid == os.getpid():
            return False  # an earlier run of this same process (one run at a time)
        return holder.alive()


def _who(text: str) -> tuple[Holder | None, str]:
    try:
        data = json.loads(text)
        return Holder(**data["holder"]), str(data["token"])
    except (ValueError, TypeError, KeyError):
        return None, ""


def record(holder: Holder, run: str) -> str:
    """The claim's holder part: who runs the restart, and which run."""
    return json.dumps({"holder": dataclasses.asdict(holder), "token": run}, sort_keys=True)


def read_script(releases_dir: str) -> str:
    """Print ``claim LINE`` when the node holds a restart claim."""
    claim = sh_path(Layout(releases_dir).claim)
    return f'[ -s {claim} ] && printf "claim %s\\n" "$(head -n 1 {claim})"; true'


def claim_and_restart(
    releases_dir: str, holder_record: str, ttl: float, stale: str, restart: str
) -> str:
    """Take the claim (or the stale one judged ``stale``), then run ``restart``.

    Prints ``restart-claim-taken UPTIME`` and runs the restart command, or
    prints ``restart-claim-busy LINE`` and exits 75 when another claim holds.
    The lock's file descriptor is closed before the restart command, so no JVM
    it starts inherits the lock. A restart command that exits non-zero releases
    the claim at once (``restart-claim-released``, its exit code kept): it
    restarts nothing that a later run should wait for.
    """
    layout = Layout(releases_dir)
    claim, new = sh_path(layout.claim), sh_path(layout.claim_new)
    return "\n".join(
        [
            "now=$(cut -d' ' -f1 /proc/uptime 2>/dev/null || echo 0)",
            f"exec 9>>{sh_path(layout.claim_lock)}",
            "command -v flock >/dev/null 2>&1 && flock -w 10 9",
            f"held=$(head -n 1 {claim} 2>/dev/null)",
            f'if [ -n "$held" ] && [ "$held" != {shlex.quote(stale)} ]; then',
            f'  exec 9>&-; printf "{BUSY} %s\\n" "$held"; exit {BUSY_EXIT}',
            "fi",
            f'until=$(awk -v n="$now" -v t={ttl:.2f} \'BEGIN {{ printf "%.2f", n + t }}\')',
            f'mine="$now $until "{shlex.quote(holder_record)}',
            f'printf "%s\\n" "$mine" > {new}',
            f"mv -f {new} {claim}",
            "exec 9>&-",
            f'printf "{CLAIMED} %s\\n" "$now"',
            # a subshell: an `exit` in the command ends it, not the release below
            f"(\n{restart}\n)",
            "rc=$?",
            '[ "$rc" -eq 0 ] && exit 0',
            f'[ "$(head -n 1 {claim} 2>/dev/null)" = "$mine" ] && rm -f {claim}',
            f'printf "{RELEASED} %s\\n" "$rc"',
            'exit "$rc"',
        ]
    )


def clear_script(releases_dir: str, line: str) -> str:
    """Remove the claim if it is still exactly ``line`` (one judged over)."""
    claim = sh_path(Layout(releases_dir).claim)
    return f'[ "$(head -n 1 {claim} 2>/dev/null)" = {shlex.quote(line)} ] && rm -f {claim}; true'


def release_script(releases_dir: str, run: str) -> str:
    """Remove the claim if run ``run`` holds it; leave anyone else's."""
    claim = sh_path(Layout(releases_dir).claim)
    mark = shlex.quote(f'"token": {json.dumps(run)}')  # as `record` wrote it
    return f"grep -qF {mark} {claim} 2>/dev/null && rm -f {claim}; true"


def released(stdout: str) -> bool:
    """Whether the restart command failed and its claim was released on the node."""
    return any(line.startswith(RELEASED + " ") for line in stdout.splitlines())


def own_output(stdout: str) -> str:
    """What the restart command itself printed, without the claim's own lines."""
    ours = (BUSY, CLAIMED, RELEASED)
    return "\n".join(line for line in stdout.splitlines() if line.partition(" ")[0] not in ours)


def parse_outcome(stdout: str) -> tuple[Claim | None, float | None]:
    """(the claim in the way, or None; the node's uptime when ours was taken)."""
    for line in stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == BUSY:
            return Claim.parse(rest), None
        if word == CLAIMED:
            try:
                return None, float(rest)
            except ValueError:
                return None, None
    return None, None
