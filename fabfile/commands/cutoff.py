"""What the next command says about a run with no end: cut off (its coordinator died:
SIGKILL, a reboot, a lost machine) or still running.

Status says it in full: the phase it stopped in and on which nodes, what each of its
nodes runs now and how haproxy holds it, and the two commands that settle it (run it
again, or roll back). Deploy and switch say it in a line before they start;
rollback's first line names the release it goes back to.
A run stays told until a later deploy, rollback or switch ends (a refused one does
not count).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..app.release import Release
from ..cluster.balancer import State
from ..cluster.probe import Status
from ..engine.phase import Phase
from ..records.history import Action, History, Result, Run
from ..records.runlog import OTHER_HOST_BOUND, Liveness
from ..words import some

SETTLING = (Action.DEPLOY, Action.ROLLBACK, Action.SWITCH, Action.DARK)
_PASSED = ("deployed", "unchanged", "verified, not live", "live")
_AT_REST = (Phase.STAGED, Phase.DONE, Phase.SKIPPED, Phase.FAILED, Phase.INTERRUPTED)
SHOWN = 8  # nodes named one per line; past that, those the run reached, then a count


def unfinished(history: History) -> list[Run]:
    """Runs with no end since the last deploy, rollback or switch that ended, oldest first."""
    found: list[Run] = []
    for run in reversed(history.runs()):
        record = run.record
        if run.liveness is None and record.outcome != Result.REFUSED and record.action in SETTLING:
            break
        if run.liveness is not None:
            found.append(run)
    return found[::-1]


def where(run: Run) -> tuple[str, list[str]]:
    """The phase the run stopped in and the nodes caught in it: a node changing and not
    yet verified first, as an interruption names it (`fabfile.engine.ending`), then one
    on its way (draining, staging, pre-flight); none when it was between steps."""
    last = {host: item.phases[-1][0] for host, item in run.record.hosts.items() if item.phases}
    changing = [h for h, phase in last.items() if _changes(phase)]
    caught = [h for h in changing if run.record.hosts[h].outcome not in _PASSED]
    busy = [h for h, phase in last.items() if phase not in _AT_REST]
    hosts = caught or changing or busy
    if hosts:
        phase = last[hosts[0]]
        return phase, [h for h in hosts if last[h] == phase]
    return _stage_words(run.stage), []


def headline(run: Run) -> str:
    """One line: which run, by whom, and where it stopped."""
    record, process = run.record, run.process
    what = f"{record.action} {record.artifact or _version(run)}"
    if process is not None:
        what += f" by {process.user}@{process.host}, pid {process.pid}, started {process.started}"
    phase, hosts = where(run)
    at = f"in phase '{phase}'" + (f" on {some(hosts)}" if hosts else "")
    if run.liveness == Liveness.ALIVE:
        return f"Run {run.number} ({what}) is in progress, {at}."
    if run.liveness == Liveness.UNKNOWN:
        hours = OTHER_HOST_BOUND.total_seconds() / 3600
        return (
            f"Run {run.number} ({what}) has no end yet, {at}: it runs on another "
            f"coordinator or was cut off (this host cannot tell; {hours:g} h after its "
            "last line it counts as cut off)."
        )
    return f"Run {run.number} ({what}) was cut off {at}: no end was recorded."


def status_notice(
    run: Run,
    statuses: Sequence[Status],
    rotation: Mapping[str, State] | None,
    back: str,
) -> list[str]:
    """Status's full notice: the headline, each node then and now, what to run."""
    lines = [headline(run)]
    now = {status.host: status for status in statuses}
    hosts = list(run.record.hosts)
    reached = [h for h in hosts if _reached(run, h)]
    shown = hosts if len(hosts) <= SHOWN else reached[:SHOWN]
    for host in shown:
        item = run.record.hosts[host]
        phase = item.phases[-1][0] if item.phases else "pending"
        lines.append(f"  {host}: {item.outcome or '?'} ({phase}); now {_now(host, now, rotation)}")
    if len(shown) < len(hosts):
        lines.append(f"  and {len(hosts) - len(shown)} more ({len(reached)} reached in all)")
    if run.liveness == Liveness.GONE:
        lines.append(advice(run, back))
    return lines


def advice(run: Run, back: str) -> str:
    """The two ways to settle a cut-off run (``back``: the rollback command)."""
    again = run.process.command if run.process else "the same command"
    finish = f"To finish it, run it again: {again}"
    if run.record.action == Action.ROLLBACK or not back:
        return finish + "."
    return f"{finish}. To go back instead: {back}"


def rollback_line(runs: Sequence[Run], top: Release | None, target: Release) -> str:
    """Rollback's first line after a cut-off run: the release it goes back to, and why.
    ``top`` is the release the history has on top, ``target`` the one rollback aims at."""
    cut = [run for run in runs if run.liveness == Liveness.GONE]
    if not cut:
        return ""
    run = cut[-1]
    phase, hosts = where(run)
    at = f"in phase '{phase}'" + (f" on {some(hosts)}" if hosts else "")
    what = f"{run.record.action} {_version(run)}, cut off {at}"
    if run.record.release == top and run.record.action != Action.ROLLBACK:
        return (
            f"rollback to {target.version}, the release live on every node before run "
            f"{run.number} ({what})"
        )
    return f"rollback to {target.version}; run {run.number} ({what})"


def _version(run: Run) -> str:
    return run.record.release.version if run.record.release else "?"


def _reached(run: Run, host: str) -> bool:
    """The run did more to it than read and stage."""
    marks = {phase for phase, _ in run.record.hosts[host].phases}
    return bool(marks - {Phase.PENDING, Phase.CHECKING, Phase.STAGING, Phase.STAGED})


def _now(host: str, now: Mapping[str, Status], rotation: Mapping[str, State] | None) -> str:
    status = now.get(host)
    if status is None:
        answer = "not probed"
    else:
        answer = f"runs {status.version}" if status.ok else f"does not answer Ok: {status.reason}"
    if rotation is not None:
        answer += f", haproxy {rotation.get(host, State.MISSING)}"
    return answer


def _changes(phase: str) -> bool:
    try:
        return Phase(phase).changes_node
    except ValueError:
        return False


def _stage_words(stage: str) -> str:
    return {"preflight": "pre-flight", "nodes": "rolling out"}.get(stage, stage or "starting")
