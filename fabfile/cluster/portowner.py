"""Who holds a node's status port: the process, when it started, and whether the
container's own PID file names it.

When the old version keeps answering after a restart, the usual cause is a JVM
that nothing manages any more (a stray from two restarts that overlapped): it
holds the port, so every new JVM fails to bind. Reading ``ss`` and ``/proc`` on
the node turns "the old version still answers" into "pid 4711, started 13:13:46,
which jetty.sh does not know: stop it".

Times are read on the node as seconds since its boot (``/proc/uptime`` and a
process's start tick share that clock, to the hundredth of a second) and shown
as wall-clock time through the node's own ``date``.
"""

from __future__ import annotations

import dataclasses
import datetime
import shlex

from .address import normal, resolve
from .shell import sh_path

_WILDCARDS = {"0.0.0.0", "::", "*"}


@dataclasses.dataclass(frozen=True)
class Listener:
    """One process listening on the status port."""

    address: str  # the local address it is bound to ("0.0.0.0", "127.0.0.3", ...)
    pid: int
    started: float  # seconds since the node's boot
    command: str


@dataclasses.dataclass(frozen=True)
class PortReport:
    """What the node said about its status port, at one moment."""

    port: int
    listeners: tuple[Listener, ...]
    pid_file: str  # the path from .config ('' when not set)
    pid_file_names: int | None  # the PID in that file, None when missing or unreadable
    uptime: float  # the node's seconds since boot when it answered
    clock: float  # the node's wall clock (epoch seconds) at the same moment

    def wall(self, uptime: float) -> str:
        """A moment on the node's boot clock as the node's wall-clock time (HH:MM:SS)."""
        moment = self.clock - (self.uptime - uptime)
        return datetime.datetime.fromtimestamp(moment).astimezone().strftime("%H:%M:%S")

    def known(self, listener: Listener) -> bool:
        return self.pid_file_names == listener.pid


def script(port: int, pid_file: str) -> str:
    """A POSIX sh script that prints the port's listeners, the PID file and the clocks."""
    pid_read = f"cat {sh_path(pid_file)} 2>/dev/null" if pid_file else "true"
    return "\n".join(
        [
            "hz=$(getconf CLK_TCK 2>/dev/null || echo 100)",
            f"ss -Hltnp {shlex.quote(f'sport = :{port}')} 2>/dev/null |",
            "while read -r _ _ _ addr _ users; do",
            "  pids=$(printf '%s' \"$users\" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)",
            "  for pid in $pids; do",
            "    tick=$(sed 's/.*) //' /proc/$pid/stat 2>/dev/null | cut -d' ' -f20)",
            '    [ -n "$tick" ] || continue',
            '    start=$(awk -v t="$tick" -v hz="$hz" \'BEGIN { printf "%.2f", t / hz }\')',
            "    comm=$(cat /proc/$pid/comm 2>/dev/null)",
            '    printf "listener %s %s %s %s\\n" "$addr" "$pid" "$start" "$comm"',
            "  done",
            "done",
            f'printf "pidfile %s\\n" "$({pid_read} | head -n 1)"',
            'printf "uptime %s\\n" "$(cut -d\' \' -f1 /proc/uptime)"',
            'printf "clock %s\\n" "$(date +%s)"',
        ]
    )


def parse(text: str, port: int, pid_file: str, host: str) -> PortReport:
    """Read the script's output; keep only listeners bound to ``host`` or to every address."""
    addresses = resolve(host)
    listeners: list[Listener] = []
    values = {"pidfile": "", "uptime": "0", "clock": "0"}
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word == "listener":
            listener = _listener(rest)
            if listener and (listener.address in addresses or listener.address in _WILDCARDS):
                listeners.append(listener)
        elif word in values:
            values[word] = rest.strip()
    named = values["pidfile"]
    return PortReport(
        port=port,
        listeners=tuple(listeners),
        pid_file=pid_file,
        pid_file_names=int(named) if named.isdigit() else None,
        uptime=_float(values["uptime"]),
        clock=_float(values["clock"]),
    )


def _listener(rest: str) -> Listener | None:
    fields = rest.split(maxsplit=3)
    if len(fields) < 3 or not fields[1].isdigit():
        return None
    return Listener(
        address=_bare_address(fields[0]),
        pid=int(fields[1]),
        started=_float(fields[2]),
        command=fields[3].strip() if len(fields) > 3 else "?",
    )


def _bare_address(local: str) -> str:
    """``[::ffff:127.0.0.3]:8080`` -> ``127.0.0.3``; ``*:8080`` -> ``*``."""
    return normal(local.rpartition(":")[0]) or "*"


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def explain(report: PortReport, host: str, restarted_at: float | None, again: str) -> str:
    """Why the old version may still answer, in words a user can act on ('' if unknown)."""
    port = f"port {report.port} on {host}"
    if not report.listeners:
        return f"nothing on {host} was seen listening on port {report.port} (ss found no listener)"
    parts = []
    for listener in report.listeners:
        who = f"{listener.command} pid {listener.pid}, started {report.wall(listener.started)}"
        if report.pid_file and not report.known(listener):
            names = (
                f"it names {report.pid_file_names}"
                if report.pid_file_names is not None
                else "it is missing or empty"
            )
            parts.append(
                f"{port} is held by {who}, which the container's PID file {report.pid_file} "
                f"does not know ({names}); stop it (kill {listener.pid}), then run: {again}"
            )
        elif restarted_at is not None and listener.started < restarted_at:
            parts.append(
                f"{port} is held by {who}, before the restart at {report.wall(restarted_at)}: "
                "the restart command did not replace it; check 'restart' in .config"
            )
        else:
            parts.append(f"{port} is held by {who}")
    return "; ".join(parts)
