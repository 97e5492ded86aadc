"""What each command does, free of Invoke: status, deploy, rollback, history.

The tasks in `fabfile.cli.tasks` parse flags and call these; tests call them too.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console

from ..app import artifact as artifacts
from ..app.appdir import AppDir
from ..app.config import BLUE_GREEN, PARALLEL, NodeConfig
from ..app.pace import Pace, parse_batch
from ..app.release import Release
from ..cluster import drift, logback, probe
from ..cluster.balancer import Balancer
from ..cluster.manager import Deployed, Manager
from ..cluster.node import Node
from ..cluster.probe import Status
from ..engine import planning, strategies
from ..engine.batches import RollBack
from ..engine.planning import Plan
from ..engine.retirement import Held, Retirement
from ..engine.rollout import Rollout
from ..engine.strategies.contract import Setup, Strategy
from ..engine.target import Outcome, Target
from ..errors import (
    ConfigError,
    DeployError,
    ExitCode,
    Interrupted,
    NodeError,
    PreflightError,
    RolloutError,
    UsageError,
    explain,
)
from ..records.history import Action, History, HostRecord, Record, Result
from ..records.lock import Lock, read_holder
from ..view import console as view
from ..view import preview, progress, tables, timeline
from ..words import some


@dataclasses.dataclass(frozen=True)
class Options:
    """What every command takes: where the app is, which nodes, how to print."""

    app: AppDir
    hosts: tuple[str, ...] | None = None
    console: Console = dataclasses.field(default_factory=view.make_console)

    @property
    def nodes(self) -> tuple[NodeConfig, ...]:
        return self.app.config.select(self.hosts)

    @property
    def blue_green(self) -> bool:
        return self.app.config.strategy == BLUE_GREEN

    @property
    def parallel(self) -> bool:
        return self.app.config.strategy == PARALLEL

    def balancer(self, nodes: tuple[NodeConfig, ...]) -> Balancer | None:
        return Balancer.for_nodes(nodes, self.app.config.lb_state_file)

    def command(self, *words: str) -> str:
        """The command line that repeats ``words`` for this app and these hosts."""
        line = ["deploy", *words, "--app-dir", str(self.app.path)]
        if self.hosts:
            line += ["--hosts", ",".join(self.hosts)]
        return shlex.join(line)


@dataclasses.dataclass(frozen=True)
class PaceFlags:
    """``--batch`` and ``--confirm``: what the command line changes in ``.config``'s pace."""

    batch: str | None = None
    confirm: bool = False

    def apply(self, pace: Pace, canary: bool = True) -> Pace:
        """``pace`` with the flags; ``canary=False`` (a rollback) goes without one."""
        if self.batch is not None:
            try:
                pace = dataclasses.replace(pace, batch=parse_batch(self.batch))
            except ValueError as error:
                raise UsageError(f"--batch {self.batch}: {error}") from None
        if self.confirm:
            if not sys.stdin.isatty():
                raise UsageError(
                    "--confirm asks on a terminal, and stdin is not one; without it the "
                    "canary is judged over canary_wait seconds"
                )
            pace = dataclasses.replace(pace, confirm=True, canary=max(pace.canary, 1))
        return pace if canary else dataclasses.replace(pace, canary=0)


def status(options: Options, as_json: bool = False) -> ExitCode:
    """Print every node's /status (and haproxy state), probed in parallel.

    Non-zero when a node is not Ok or is out of rotation: a node left in
    maintenance serves nobody, however well its /status answers. On a
    blue/green app the idle colour is out of rotation by design: non-zero
    when a host has no live colour, or its live colour is not Ok and UP.
    """
    nodes = options.nodes
    statuses = probe.probe_all(nodes)
    current = History(options.app.history_path).current()
    expected = current.version if current else None
    if options.parallel:
        return _versions_status(options, statuses, expected, as_json)
    rotation = _rotation(options, nodes)
    live = _live(nodes, rotation) if options.blue_green and rotation is not None else None
    if as_json:
        options.console.file.write(tables.status_json(statuses, expected, rotation, live) + "\n")
    else:
        options.console.print(tables.status_table(statuses, expected, rotation, live))
    if live is not None:
        return ExitCode.OK if _colours_serve(nodes, statuses, live) else ExitCode.NODE_FAILED
    serving = all(state == "UP" for state in (rotation or {}).values())
    return ExitCode.OK if serving and all(s.ok for s in statuses) else ExitCode.NODE_FAILED


def _versions_status(
    options: Options, statuses: Sequence[Status], expected: str | None, as_json: bool
) -> ExitCode:
    """Parallel deployment: every version on every node, with its sessions."""
    nodes = options.nodes
    versions: dict[str, list[Deployed]] = {}
    errors: list[str] = []
    try:
        manager = Manager.for_nodes(nodes)
    except ConfigError as error:  # no password here: /status still says what serves
        manager, errors = None, [f"versions not listed: {error}"]
    if manager is not None:
        with ThreadPoolExecutor(max_workers=min(32, len(nodes))) as pool:
            found = list(pool.map(_versions_or_error(manager), nodes))
        for node, listed in zip(nodes, found, strict=True):
            if isinstance(listed, str):
                errors.append(listed)
            else:
                versions[node.label] = listed
    if as_json:
        options.console.file.write(tables.versions_json(statuses, versions, expected) + "\n")
    else:
        options.console.print(tables.versions_table(statuses, versions))
        for line in [*tables.held_lines(versions), *errors]:
            options.console.print(view.plain(line))
    return ExitCode.OK if all(s.ok for s in statuses) and not errors else ExitCode.NODE_FAILED


def _versions_or_error(manager: Manager) -> Callable[[NodeConfig], list[Deployed] | str]:
    def versions(node: NodeConfig) -> list[Deployed] | str:
        try:
            return manager.versions(node)
        except NodeError as error:
            return str(error)

    return versions


def _live(nodes: tuple[NodeConfig, ...], rotation: dict[str, str]) -> dict[str, bool]:
    """Blue/green: which colours take traffic, by haproxy's own state."""
    return {node.label: rotation[node.label] in ("UP", "DRAIN") for node in nodes}


def _colours_serve(
    nodes: tuple[NodeConfig, ...], statuses: Sequence[Status], live: dict[str, bool]
) -> bool:
    """Every host has a live colour, and every live colour answers Ok."""
    ok = {status.host: status.ok for status in statuses}
    hosts = {node.host for node in nodes}
    serving = {node.host for node in nodes if live[node.label]}
    return serving == hosts and all(ok[label] for label, on in live.items() if on)


def _rotation(options: Options, nodes: tuple[NodeConfig, ...]) -> dict[str, str] | None:
    """Each node's haproxy state, None without a load balancer in .config."""
    balancer = options.balancer(nodes)
    if balancer is None:
        return None
    try:
        return balancer.states(nodes)
    except NodeError:
        return {node.label: "UNREACHABLE" for node in nodes}


def deploy(
    options: Options,
    war: str | None,
    force: bool = False,
    latest: bool = False,
    switch: bool = True,
    pace_flags: PaceFlags = PaceFlags(),
) -> ExitCode:
    """Roll ``war`` (or the newest WAR) over the nodes, in the app's strategy's order.

    ``switch=False`` (blue/green only) verifies it on the idle colours and stops there.
    """
    app = options.app
    if war and latest:
        raise UsageError("give a WAR or --latest, not both")
    if not switch:
        _require_blue_green(options, "--no-switch")
    try:
        release, sources = planning.release_of(app, _artifact(app, war, latest))
        options.nodes  # noqa: B018 - parse .config now, so a refusal is recorded
        pace = pace_flags.apply(app.config.pace, canary=switch)  # --no-switch: no traffic
    except DeployError as error:
        _record_refusal(options, Action.DEPLOY, war or "(newest)", error)
        raise
    flags = [*(["--force"] if force else []), *([] if switch else ["--no-switch"])]
    again = options.command(release.war_name, *flags)
    if switch:
        next_step = planning.undo_line(app, release, options.command("rollback"))
    else:
        next_step = f"Nothing was switched. To send traffic to it: {options.command('switch')}"
    action = Action.DEPLOY if switch else Action.DARK
    plan = Plan(action, release, sources, options.nodes, force, next_step, again, pace)
    try:
        code = _roll(options, plan, switch)
    except RollBack as chosen:
        if not switch:  # nothing users see changed: nothing to roll back
            raise RolloutError(f"{chosen}; nothing was switched, so nothing to roll back") from None
        options.console.print(view.plain(f"{explain(chosen)}; rolling back now"))
        rollback(options, PaceFlags(pace_flags.batch))
        raise RolloutError(f"{chosen}; rolled back to the release before") from None
    return _retire_after(options, code)


def stage(options: Options, war: str | None, latest: bool = False) -> ExitCode:
    """Send ``war``'s release to every node ahead (pre-flight and staging only)."""
    app = options.app
    found = _artifact(app, war, latest)
    release, sources = planning.release_of(app, found)
    command = options.command("stage", release.war_name)
    plan = Plan(Action.STAGE, release, sources, options.nodes, command=command)
    setup = Setup(rotation=options.balancer(plan.nodes), manager=Manager.for_nodes(plan.nodes))
    strategy = strategies.build(app.config.strategy, setup)
    options.console.print(f"stage {release.label} to {len(plan.nodes)} node(s); nothing goes live")
    with Lock(app.lock_path, command):
        targets = _run(options, plan, strategy, stage_only=True)
    sent = sum(target.sent for target in targets)
    options.console.print(
        view.plain(
            f"staged: {sent} bytes sent; every node holds {release.label}. Deploying it now "
            f"sends nothing: {options.command(release.war_name)}"
        )
    )
    return ExitCode.OK


def dry_run(
    options: Options, war: str | None, force: bool = False, latest: bool = False
) -> ExitCode:
    """Print what ``deploy WAR`` would do on each node; change nothing, take no lock."""
    app = options.app
    found = _artifact(app, war, latest)
    release, sources = planning.release_of(app, found)
    files = app.overrides()
    merged = {host: files.files(host) for host in app.config.hosts}
    plan = Plan(Action.DEPLOY, release, sources, options.nodes, force)
    balancer = options.balancer(plan.nodes)
    setup = Setup(rotation=balancer, force=force, manager=Manager.for_nodes(plan.nodes))
    strategy = strategies.build(app.config.strategy, setup)
    live = None
    if options.blue_green and balancer is not None:
        try:
            live = _live(plan.nodes, balancer.states(plan.nodes))
        except NodeError as error:
            raise PreflightError(
                f"{error}; the dry run needs it to tell the idle colours"
            ) from None
    rollout = Rollout(app, plan, strategy, progress.PlainReporter(options.console))
    holder = read_holder(app.lock_path)
    console = options.console
    console.print(
        view.plain(
            f"dry run: deploy {release.label} to {len(plan.nodes)} node(s), strategy "
            f"{app.config.strategy}; nothing is changed, no lock is taken"
        )
    )
    console.print(view.plain(f"lock: held by {holder.describe()}" if holder else "lock: free"))
    steps = preview.plan_steps(rollout, merged, app.config.strategy, live)
    for line in preview.lines(steps):
        console.print(view.plain(line))
    return ExitCode.PREFLIGHT if any(step.error for step in steps) else ExitCode.OK


def _retire_after(options: Options, code: ExitCode) -> ExitCode:
    """Parallel, ``retire = auto``: retire old versions once the new one serves. What is
    left after retire_timeout keeps serving its users; the deploy itself succeeded."""
    if code != ExitCode.OK or not options.parallel or not options.app.config.retire:
        return code
    try:
        retire(options)
    except Interrupted:
        raise
    except DeployError as error:  # the deploy is done: say what the retire could not do
        options.console.print(
            view.plain(
                f"deployed; retire did not finish: {explain(error)}. "
                f"Run it later: {options.command('retire')}"
            )
        )
    return code


def switch(options: Options) -> ExitCode:
    """Blue/green: send the traffic to the other colour, whatever release it runs
    (it must answer /status with it); run again, it switches back."""
    _require_blue_green(options, "deploy switch")
    balancer = options.balancer(options.nodes)
    assert balancer is not None  # `fabfile.app.config` requires one for blue-green
    try:
        states = balancer.states(options.nodes)
    except NodeError as error:
        raise PreflightError(f"{error}; the switch needs it; nothing was changed") from None
    idle = tuple(node for node in options.nodes if states[node.label] == "MAINT")
    release, sources = planning.switch_target(options.app, idle)
    again = options.command("switch")
    finish = f"To finish the switch, run it again: {again} (it aims at the same release)"
    pace = PaceFlags().apply(options.app.config.pace, canary=False)
    plan = Plan(Action.SWITCH, release, sources, options.nodes, False, finish, again, pace)
    return _roll(options, plan)


def _require_blue_green(options: Options, what: str) -> None:
    if not options.blue_green:
        raise UsageError(
            f"{what} is for blue/green apps; {options.app.config.path} has strategy = "
            f"{options.app.config.strategy}"
        )


def rollback(options: Options, flags: PaceFlags = PaceFlags()) -> ExitCode:
    """Go back to the release deployed before the current one, from the nodes' copies.

    What "back" means is the strategy's (`fabfile.engine.strategies.contract.Rollback`);
    for rolling it is a rolling redeploy of the previous release.
    """
    release, sources = planning.rollback_target(options.app, options.nodes)
    again = options.command("rollback")
    finish = f"To finish the rollback, run it again: {again} (it aims at the same release)"
    pace = flags.apply(options.app.config.pace, canary=False)
    plan = Plan(Action.ROLLBACK, release, sources, options.nodes, False, finish, again, pace)
    return _retire_after(options, _roll(options, plan))


def retire(options: Options, now: bool = False) -> ExitCode:
    """Parallel: undeploy old versions once their sessions end on each host (``now``:
    whatever their sessions), waiting at most ``retire_timeout``.

    Non-zero when old versions are left; they keep serving their users."""
    if not options.parallel:
        raise UsageError(
            f"deploy retire is for parallel apps; {options.app.config.path} has strategy = "
            f"{options.app.config.strategy}"
        )
    nodes = options.nodes
    manager = Manager.for_nodes(nodes)
    assert manager is not None  # `fabfile.app.config` requires manager_user for parallel
    timeout = options.app.config.retire_timeout
    shown = progress.RetireView(options.console)
    verified = History(options.app.history_path).verified_tags()
    run = Retirement(manager, nodes, shown, timeout, now, verified)
    command = options.command("retire", *(["--now"] if now else []))
    with Lock(options.app.lock_path, command):
        left = _retire_recorded(options, run, shown)
    if left:
        options.console.print(view.plain(_left_message(left, timeout, options)))
    elif not run.failed:
        options.console.print("retire: no old version left")
    return ExitCode.NODE_FAILED if left or run.failed else ExitCode.OK


def _retire_recorded(options: Options, run: Retirement, shown: progress.RetireView) -> list[Held]:
    """Run ``run`` and write its history record, however it ends."""
    left: list[Held] = []
    result, message = Result.OK, ""
    try:
        with shown:
            left = run.run()
    except KeyboardInterrupt:
        result, message = Result.INTERRUPTED, "retire interrupted: every version not yet "
        message += "undeployed keeps serving; run `deploy retire` again to go on"
        raise Interrupted(message) from None
    except NodeError as error:
        result, message = Result.FAILED, str(error)
        raise
    finally:
        _record_retire(options, run, left, result, message)
    return left


def _left_message(left: Sequence[Held], timeout: float, options: Options) -> str:
    held = "; ".join(f"{h.node}: {h.version.label}, {h.version.sessions} session(s)" for h in left)
    return (
        f"after retire_timeout ({timeout:g} s) old versions still hold sessions ({held}). "
        f"They keep serving their users; leave them (the next retire tries again), or end "
        f"them now, logging those users out: {options.command('retire', '--now')}"
    )


def _record_retire(
    options: Options, run: Retirement, left: Sequence[Held], result: Result, message: str
) -> None:
    hosts = {}
    for node in options.nodes:
        gone = [f"undeployed {label}" for label in run.retired.get(node.label, [])]
        kept = [f"holds {h.version.label}" for h in left if h.node == node.label]
        hosts[node.label] = HostRecord("; ".join(gone + kept) or "nothing to retire")
    record = Record(Action.RETIRE, result, "", message=message, hosts=hosts)
    History(options.app.history_path).append(record)


def logging(options: Options) -> ExitCode:
    """Push logback.xml (each host's own, if it has one) to every node, live: no restart.

    Recorded as a release (the current one with this logback.xml), so a rollback
    goes back to the logging configuration before it."""
    app, nodes = options.app, options.nodes
    files = app.overrides()
    wanted = logback.settings(files, tuple(dict.fromkeys(node.host for node in nodes)))
    assert files.base.logback is not None  # `logback.settings` requires it
    sources = {s.file.sha256: app.archive.keep(s.file.data) for s in wanted.values()}
    pushes = [logback.Push(Node(node), wanted[node.host]) for node in nodes]
    with Lock(app.lock_path, options.command("logging")):
        current = History(app.history_path).current()  # read under the lock: it is ours
        if current is None:
            raise ConfigError(
                f"{app.history_path}: no release recorded; deploy a WAR first (logback.xml "
                "goes with it), then push logging changes"
            )
        own = {host: current.for_host(host).logback for host in app.config.hosts}
        own |= {host: setting.file.sha256 for host, setting in wanted.items()}
        release = current.with_logback(files.base.logback.sha256, own)
        options.console.print(f"logging: logback.xml to {len(nodes)} node(s), no restart")
        try:
            logback.push_all(pushes, sources)
        finally:
            for push in pushes:
                push.node.close()
            _record_logging(options, release, pushes)
    for push in pushes:
        options.console.print(view.plain(f"{push.label}: {push.outcome}: {push.detail}"))
    failed = [push.label for push in pushes if not push.ok]
    if failed:
        options.console.print(
            view.plain(
                f"logging failed on {', '.join(failed)} (each line above says what it left); "
                f"the others run the new one. Fix it and run {options.command('logging')} "
                f"again, or go back everywhere: {options.command('rollback')}"
            )
        )
    return ExitCode.NODE_FAILED if failed else ExitCode.OK


def _record_logging(options: Options, release: Release, pushes: list[logback.Push]) -> None:
    ok = all(push.ok for push in pushes)
    hosts = {push.label: HostRecord(push.outcome, push.detail) for push in pushes}
    result = Result.OK if ok else Result.FAILED
    if not any(push.touched for push in pushes):
        result = Result.REFUSED  # no node changed: not a release the cluster moved to
    record = Record(Action.LOGGING, result, release.war_name, release=release, hosts=hosts)
    History(options.app.history_path).append(record)


def config_diff(options: Options, as_json: bool = False) -> ExitCode:
    """What each node's config files differ in from what the coordinator would send it.

    Exit 0 when every node has what it would be sent, 1 when one differs (drift)
    or cannot be read."""
    app = options.app
    files = app.overrides()
    merged = {host: files.files(host) for host in app.config.hosts}
    nodes = [Node(config) for config in options.nodes]
    try:
        found = drift.compare_all(nodes, merged, app.config.strategy)
    finally:
        for node in nodes:
            node.close()
    errors = [item for item in found if isinstance(item, str)]
    drifts = [item for item in found if not isinstance(item, str)]
    if as_json:
        shown = [d.to_dict() for d in drifts] + [{"error": e} for e in errors]
        options.console.file.write(json.dumps(shown, indent=2) + "\n")
    else:
        _print_drift(options.console, drifts, errors)
    bad = errors or any(d.diff for d in drifts)
    return ExitCode.NODE_FAILED if bad else ExitCode.OK


def _print_drift(console: Console, drifts: list[drift.FileDrift], errors: list[str]) -> None:
    for item in drifts:
        if item.diff:
            console.print(view.plain(item.diff.rstrip("\n")))
    changed = sorted({f"{d.node}: {d.name}" for d in drifts if d.diff})
    for error in errors:
        console.print(view.plain(f"not read: {error}"))
    if changed:
        console.print(view.plain(f"drift: {', '.join(changed)}; a deploy puts the files back"))
    elif not errors:
        console.print(f"no drift: {len(drifts)} file(s) on the nodes are what deploy would send")


def config_history(options: Options, limit: int = 20, as_json: bool = False) -> ExitCode:
    """Every version of the config files the coordinator saw, newest last."""
    versions = options.app.archive.versions()[-limit:]
    if as_json:
        rows = [dataclasses.asdict(v) for v in versions]
        options.console.file.write(json.dumps(rows, indent=2) + "\n")
    elif not versions:
        options.console.print("no configuration files archived yet")
    else:
        options.console.print(tables.config_table(options.app.archive, versions))
    return ExitCode.OK


def history(options: Options, limit: int = 20, as_json: bool = False) -> ExitCode:
    """The last ``limit`` records, as a table or, for scripts, as JSON (a list, oldest first)."""
    every = History(options.app.history_path).entries()
    entries = every[-limit:]
    first = len(every) - len(entries) + 1
    if as_json:
        numbered = [{"run": n} | e for n, e in enumerate(entries, start=first)]
        options.console.file.write(json.dumps(numbered, indent=2) + "\n")
    elif not entries:
        options.console.print(f"no deploys recorded in {options.app.history_path} yet")
    else:
        options.console.print(tables.history_table(entries, first))
    return ExitCode.OK


def report(
    options: Options, run: int = 0, output: str | None = None, as_json: bool = False
) -> ExitCode:
    """Where one run's time went: seconds per phase and node here (or as JSON), and its
    timeline drawn into a file (with --json, only when --output names one)."""
    path = options.app.history_path
    number, entry = timeline.chosen(History(path).entries(), run, str(path))
    drawn = timeline.of(entry)
    target = timeline.destination(output, number) if output or not as_json else None
    if target is not None:
        timeline.write(drawn, timeline.title(number, entry), target)
    if as_json:
        picture = str(target) if target else None
        data = {"run": number, "picture": picture, "nodes": timeline.rows(drawn)}
        options.console.file.write(json.dumps(data, indent=2) + "\n")
        return ExitCode.OK
    options.console.print(view.plain(timeline.title(number, entry)))
    options.console.print(tables.timeline_table(drawn))
    options.console.print(f"timeline: {view.plain(str(target))}")
    return ExitCode.OK


def _record_refusal(options: Options, action: Action, artifact: str, error: DeployError) -> None:
    """Bad input changes nothing, but the history still says it was tried and why."""
    record = Record(action, Result.REFUSED, Path(artifact).name, message=explain(error))
    History(options.app.history_path).append(record)


def _artifact(app: AppDir, war: str | None, latest: bool) -> artifacts.Artifact:
    """The WAR a command names, or with none (or --latest) the newest by Maven version."""
    if war and latest:
        raise UsageError("give a WAR or --latest, not both")
    if war:
        return artifacts.read(_war_path(app, war), app.name)
    return artifacts.newest(app.path, app.name)


def _war_path(app: AppDir, war: str) -> Path:
    path = Path(war)
    return (path if path.is_absolute() or path.exists() else app.path / path).absolute()


def _roll(options: Options, plan: Plan, switch: bool = True) -> ExitCode:
    console = options.console
    balancer = options.balancer(plan.nodes)
    if balancer is None and not options.parallel:  # parallel restarts nothing
        console.print(
            "[yellow]warning:[/] no load balancer in .config (lb_socket): requests sent to a "
            "node while it restarts may fail"
        )
    console.print(f"{plan.action} {plan.release.label} to {len(plan.nodes)} node(s)")
    manager = Manager.for_nodes(plan.nodes)
    setup = Setup(
        rotation=balancer,
        sessions=manager,
        switch=switch,
        force=plan.force,
        distributable=_distributable(plan),
        rollback=plan.action == Action.ROLLBACK,
        manager=manager,
    )
    strategy = strategies.build(options.app.config.strategy, setup)
    with Lock(options.app.lock_path, plan.command):
        targets = _run(options, plan, strategy)
    _summary(console, targets)
    if any(target.outcome == Outcome.VERIFIED for target in targets):
        console.print(plan.next_step)
    return ExitCode.OK


def _distributable(plan: Plan) -> bool | None:
    """Whether the release's WAR replicates sessions (None: no copy here to read)."""
    war = plan.sources.get(plan.release.war)
    return artifacts.distributable(war) if war else None


def _run(
    options: Options, plan: Plan, strategy: Strategy, stage_only: bool = False
) -> list[Target]:
    console = options.console
    hosts = [node.label for node in plan.nodes]
    if console.is_terminal:
        with progress.LiveReporter(console, hosts) as live:
            return Rollout(options.app, plan, strategy, live).run(stage_only)
    return Rollout(options.app, plan, strategy, progress.PlainReporter(console)).run(stage_only)


SUMMARY_NAMES = 8  # up to this many nodes, the summary names each one's outcome
# named in a fleet's summary: the nodes to look at (untouched ones are only counted)
_TROUBLE = (Outcome.FAILED, Outcome.INTERRUPTED, Outcome.INSTALLING, Outcome.INSTALLED)


def _summary(console: Console, targets: Sequence[Target]) -> None:
    """Each node's outcome; past a few nodes, how many ended each way, and by name only
    those not on the release."""
    sent = sum(t.sent for t in targets)
    if len(targets) <= SUMMARY_NAMES:
        outcomes = ", ".join(f"{t.host}: {t.outcome.value}" for t in targets)
    else:
        by: dict[Outcome, list[str]] = {}
        for target in targets:
            by.setdefault(target.outcome, []).append(target.host)
        outcomes = ", ".join(
            f"{outcome.value}: {len(hosts)}" + (f" ({some(hosts)})" if outcome in _TROUBLE else "")
            for outcome, hosts in by.items()
        )
    console.print(view.plain(f"done: {outcomes}; {sent} bytes sent"))
