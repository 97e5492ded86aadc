"""A rollout: pre-flight, staging, then the strategy's order of per-node steps, recorded.

The order of the phases is the safety argument. Pre-flight reads every target
node and changes nothing; staging sends bytes to every node but touches no
running release; only then does the strategy (`fabfile.engine.strategies`) have the
runtime (`fabfile.engine.runtimes`) make the release live, node by node in its order,
and the first failure stops it there.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence

from ..app.appdir import AppDir
from ..app.overrides import LOGBACK, File
from ..app.pace import Pace
from ..app.release import Release
from ..cluster import logback, probe, restartclaim
from ..cluster.holdings import Holdings
from ..cluster.node import Node
from ..errors import (
    ConfigError,
    DeployError,
    Interrupted,
    NodeError,
    PreflightError,
    RolloutError,
    explain,
)
from ..records import history
from ..records.history import HostRecord, Record, Result
from ..records.lock import Holder
from . import fanout, warmup
from .batches import Finished
from .phase import Phase, Reporter
from .planning import Plan
from .runtimes import Runtime
from .strategies.contract import Rotation, Strategy
from .target import Outcome, Target

_FILE_NAMES = {"config": "config.properties", "jettyrc": ".jettyrc", "logback": "logback.xml"}
NodeFactory = Callable[..., Node]


class Rollout:
    """Runs one plan against the nodes and writes its history record.

    It is the `fabfile.engine.strategies.contract.Steps` a strategy is given.
    """

    def __init__(
        self,
        app: AppDir,
        plan: Plan,
        strategy: Strategy,
        reporter: Reporter,
        node: NodeFactory = Node,
    ) -> None:
        self.app = app
        self.plan = plan
        self.strategy = strategy
        self.reporter = reporter
        self.targets = [Target(node(config)) for config in plan.nodes]
        self.started = time.monotonic()
        self.stages: dict[str, float] = {}
        run_id = uuid.uuid4().hex
        holder = restartclaim.record(Holder.me(plan.command), run_id)
        self.runtime: Runtime = strategy.runtime(plan, self, run_id, holder)
        # on the release but for logback.xml: the target, and the file it will get live
        self.logging_live: dict[str, tuple[Target, logback.Setting]] = {}
        self.verdicts: list[str] = []  # the canary's, for the history

    # -- driving ------------------------------------------------------------

    def run(self, stage_only: bool = False) -> list[Target]:
        """Pre-flight, stage, roll; always record the outcome and close connections.
        ``stage_only`` (`deploy stage`): pre-flight and staging, nothing live changes."""
        result, message = Result.OK, ""
        try:
            self._timed("preflight", self.preflight)
            self._timed("staging", self.stage)
            if stage_only:
                for target in self.targets:
                    target.end(Outcome.STAGED, f"{target.sent} bytes sent")
                return self.targets
            self._timed("nodes", self._roll)
            self._timed("logging", self._logging_live)
            self._prune_unless_interrupted()
        except KeyboardInterrupt as interrupt:
            result = Result.INTERRUPTED
            message = "\n".join([self._interruption(), *getattr(interrupt, "__notes__", ())])
            raise Interrupted(message) from None
        except DeployError as error:
            result = Result.REFUSED if isinstance(error, PreflightError) else Result.FAILED
            message = explain(error)
            raise
        finally:
            self._record(result, message)
            for target in self.targets:
                target.node.close()
        return self.targets

    def _roll(self) -> None:
        try:
            self.strategy.run(self)
        except Finished as error:  # every node was reached: no "stopped there"
            error.add_note(self._finished_summary())
            raise
        except RolloutError as error:
            error.add_note(self._stopped_there())
            raise

    def _logging_live(self) -> None:
        """Nodes that ran the release but for logback.xml get it now, live and verified
        as `deploy logging` does; one where it does not take effect is a failure."""
        settled = (Outcome.DEPLOYED, Outcome.FAILED, Outcome.INSTALLING, Outcome.INSTALLED)
        pushes = [
            logback.Push(target.node, setting)
            for target, setting in self.logging_live.values()
            if target.outcome not in settled
        ]
        if not pushes:
            return
        logback.push_all(pushes, self.plan.sources)
        failed = [f"{push.label}: {push.detail}" for push in pushes if not push.ok]
        for push in pushes:
            if push.outcome == "deployed":
                self.note(f"{push.label}: logback.xml updated without a restart ({push.detail})")
        if failed:
            raise RolloutError("logback.xml did not take effect live:\n" + "\n".join(failed))

    def _timed(self, name: str, step: Callable[[], None]) -> None:
        """Run one stage of the rollout and keep its duration for the history."""
        started = time.monotonic()
        try:
            step()
        finally:
            self.stages[name] = round(time.monotonic() - started, 3)

    # -- the steps a strategy may take (`Steps`) -------------------------------

    def set_phase(self, target: Target, phase: Phase, detail: str = "") -> None:
        target.phase = phase
        target.phases.append((phase.value, round(time.monotonic() - self.started, 3)))
        self.reporter.phase(target.host, phase, detail)

    def note(self, text: str) -> None:
        self.reporter.note(text)

    @property
    def pace(self) -> Pace:
        return self.plan.pace

    @property
    def release(self) -> Release:
        return self.plan.release

    def ask(self, question: str, keys: str) -> str:
        return self.reporter.ask(question, keys)

    def record_verdict(self, text: str) -> None:
        self.verdicts.append(text)

    def make_live(self, target: Target) -> None:
        self.runtime.make_live(target)

    def warm_up(self, targets: Sequence[Target], ramp: Rotation | None = None) -> None:
        seconds = max((target.config.warmup for target in targets), default=0.0)
        how = f"{seconds:g} s, haproxy weight ramping up" if ramp and seconds else f"{seconds:g} s"
        for target in targets:
            self.set_phase(target, Phase.WARMING, how)
        if ramp is None or not seconds:
            time.sleep(seconds)
            return
        warmup.ramp(ramp, [target.config for target in targets], seconds, self.note)

    def unchanged(self, target: Target) -> bool:
        """Already runs this release, its files as deployed, and says so: verify and
        skip, unless --force."""
        release, status = self.plan.release_for(target.config), target.status
        current = target.holdings.current if target.holdings else None
        return (
            not self.plan.force
            and current is not None
            and (current == release or self._logging_only(target, current, release))
            and not self.drift(target)
            and status is not None
            and status.ok
            and (status.coordinates, status.version) == (release.coordinates, release.version)
        )

    def _logging_only(self, target: Target, current: Release, release: Release) -> bool:
        """The node runs the release but for its logback.xml, which logback rereads by
        itself: no restart, the file goes live after the strategy's run (`_logging_live`)."""
        if not release.logback or _but_logging(current, release) != release:
            return False
        try:
            data = self.plan.sources[release.logback].read_bytes()
            setting = logback.read_setting(File(LOGBACK, data), LOGBACK)
        except (KeyError, OSError, ConfigError):  # no copy, or it does not scan: restart
            return False
        self.logging_live[target.host] = (target, setting)
        return True

    def drift(self, target: Target) -> list[str]:
        """The config files on the node that are not what was deployed there (an edit on
        the node, or a file removed): a deploy puts them back."""
        holdings, release = target.holdings, self.plan.release_for(target.config)
        current = holdings.current if holdings else None
        if holdings is None or current is None:
            return []
        if _but_logging(current, release) != release:
            return []  # another release: every file is installed anyway
        wanted = {"config": current.config, "jettyrc": current.jettyrc}
        wanted["logback"] = current.logback if target.config.logback_path else ""
        return [
            _FILE_NAMES[kind]
            for kind in self.runtime.places
            if wanted[kind] and holdings.file(kind) != wanted[kind]
        ]

    # -- pre-flight ---------------------------------------------------------

    def preflight(self) -> None:
        """Read every target in parallel; refuse before any release changes if one is unfit.

        (It does create the releases directory, remove partial uploads and clear
        restart claims that are over.)
        """
        errors = [e for e in fanout.each(self._check, self.targets) if e]
        errors += self.strategy.check(self.plan.nodes)
        if errors:
            raise PreflightError(
                f"pre-flight refused on {len(errors)} of {len(self.targets)} node(s); "
                "nothing was changed:\n" + "\n".join(f"  {e}" for e in errors)
            )

    def _check(self, target: Target) -> str:
        self.set_phase(target, Phase.CHECKING)
        try:
            target.holdings = target.node.holdings()
            self.runtime.settle(target)
        except NodeError as error:
            self.set_phase(target, Phase.FAILED, str(error))
            return str(error)
        target.status = probe.probe(target.config)
        if drifted := self.drift(target):
            self.note(
                f"{target.host}: {', '.join(drifted)} on the node differs from what was deployed "
                "(edited there?); this deploy puts the deployed one back"
            )
        return self.room(target, target.holdings)

    def room(self, target: Target, holdings: Holdings) -> str:
        """Why the node cannot take the release's files ('' when it can)."""
        missing = self.missing(target)
        unknown = [sha for sha in missing if sha not in self.plan.sources]
        if unknown:
            return (
                f"{target.host}: does not hold {len(unknown)} file(s) of {self.plan.release.label} "
                "and the coordinator has no copy; deploy that WAR explicitly"
            )
        need_kib = sum(self.plan.sources[sha].stat().st_size for sha in missing) // 1024
        need_kib += target.config.min_free_mb * 1024
        if holdings.free_kib < need_kib:
            return (
                f"{target.host}: {holdings.free_kib // 1024} MiB free in "
                f"{target.config.releases_dir}, {need_kib // 1024} MiB needed; free some space"
            )
        return ""

    def missing(self, target: Target) -> list[str]:
        held = target.holdings.blobs if target.holdings else frozenset()
        return sorted(self.plan.release_for(target.config).blobs - held)

    # -- staging ------------------------------------------------------------

    def stage(self) -> None:
        """Send each host the blobs it lacks, in parallel, before any restart.

        The instances of one host share its releases directory: the first of
        them receives the files, the others are staged with it."""
        first = _first_of_each_host(self.targets)
        errors = [e for e in fanout.each(self._stage, list(first.values())) if e]
        for target in self.targets:
            if first[target.node.host] is not target:
                self.set_phase(target, Phase.STAGED, f"with {first[target.node.host].host}")
        if errors:
            raise RolloutError(
                "staging failed; no node was restarted, every node still runs what it ran:\n"
                + "\n".join(f"  {e}" for e in errors)
            )

    def _stage(self, target: Target) -> str:
        missing = self.missing(target)
        if missing:
            self.set_phase(target, Phase.STAGING, f"{len(missing)} file(s)")
        try:
            for sha in missing:
                target.sent += target.node.upload(self.plan.sources[sha], sha)
        except NodeError as error:
            self.set_phase(target, Phase.FAILED, str(error))
            return str(error)
        self.set_phase(target, Phase.STAGED, f"{target.sent} bytes sent")
        return ""

    # -- after the rollout -----------------------------------------------------

    def _prune_unless_interrupted(self) -> None:
        """The rollout is done by now: a Ctrl-C here stops the clean-up, not the record."""
        try:
            self.prune()
        except KeyboardInterrupt:
            self.reporter.note("old releases not removed (interrupted); the next run does it")

    def prune(self) -> None:
        """Drop blobs of releases older than ``keep_releases``, on every host at once
        (once per host: its instances share the releases directory)."""
        fanout.each(self._prune, list(_first_of_each_host(self.targets).values()))

    def _prune(self, target: Target) -> None:
        if target.holdings is None:
            return
        keep = self.plan.release_for(target.config).blobs | _kept_blobs(target)
        try:
            target.node.prune(target.holdings, keep)
        except NodeError as error:  # best effort: old files cost disk, not correctness
            self.reporter.note(f"could not remove old releases: {error}")

    # -- history ------------------------------------------------------------

    def _interruption(self) -> str:
        active = [t for t in self.targets if t.phase not in (Phase.PENDING, Phase.DONE)]
        where = next(
            (t for t in active if t.phase.changes_node),
            next((t for t in active if t.phase == Phase.STAGING), active[-1] if active else None),
        )
        for target in self.targets:
            if target.phase.changes_node and target.outcome != Outcome.DEPLOYED:
                target.end(Outcome.INTERRUPTED, f"while {target.phase.value}")
        if where is None:
            return "interrupted before any node was contacted; nothing changed"
        return (
            f"interrupted at node {where.host} in phase '{where.phase.value}'. "
            "Run `deploy` to see what each node runs; run the same deploy again to finish"
            + (f". {self.plan.next_step}" if self.plan.next_step else "")
        )

    def _stopped_there(self) -> str:
        """Who is on what now, and the command to run: the context of a node's failure."""
        done = [t.host for t in self.targets if t.outcome.on_release]
        left = [t.host for t in self.targets if t.outcome == Outcome.UNTOUCHED]
        failed = [t.host for t in self.targets if t.outcome == Outcome.FAILED]
        lines = [
            f"Stopped there. On the new release: {', '.join(done) or 'none'}. "
            f"Untouched (still on their old release): {', '.join(left) or 'none'}."
        ]
        if len(failed) > 1:
            lines[0] += f" Failed: {', '.join(failed)}."
        if self.plan.next_step:
            lines.append(self.plan.next_step)
        return "\n".join(lines)

    def _finished_summary(self) -> str:
        done = [t.host for t in self.targets if t.outcome.on_release]
        lines = [f"On the new release: {', '.join(done) or 'none'}."]
        if self.plan.next_step:
            lines.append(self.plan.next_step)
        return "\n".join(lines)

    def _record(self, result: Result, message: str) -> None:
        record = Record(
            action=self.plan.action,
            outcome=result,
            artifact=self.plan.release.war_name,
            message=message,
            release=self.plan.release,
            hosts={t.host: _host_record(t) for t in self.targets},
            seconds=round(time.monotonic() - self.started, 3),
            stages=self.stages,
            canary="; ".join(self.verdicts),
        )
        history.History(self.app.history_path).append(record)


def _but_logging(release: Release, like: Release) -> Release:
    """``release`` with ``like``'s logback.xml: equal when only the logging differs."""
    return dataclasses.replace(release, logback=like.logback)


def _host_record(target: Target) -> HostRecord:
    ready = target.restart_to_ready
    return HostRecord(
        outcome=target.outcome.value,
        detail=target.detail,
        bytes_sent=target.sent,
        restart_to_ready=round(ready, 3) if ready is not None else None,
        guided=", ".join(target.guided),
        phases=list(target.phases),
    )


def _kept_blobs(target: Target) -> frozenset[str]:
    """Blobs of the node's newest ``keep_releases`` distinct releases (at least 2)."""
    assert target.holdings is not None
    keep_count = max(2, target.config.keep_releases)
    kept: list[Release] = []  # releases apart from their logback.xml (`deploy logging`)
    blobs: set[str] = set()
    for release in reversed(target.holdings.installed):
        key = dataclasses.replace(release, logback="")
        if key not in kept:
            if len(kept) >= keep_count:
                break
            kept.append(key)
        blobs |= release.blobs
    for held in (target.holdings.current, *target.holdings.held):
        if held is not None:
            blobs |= held.blobs  # what an instance on the node runs stays
    return frozenset(blobs)


def _first_of_each_host(targets: Sequence[Target]) -> dict[str, Target]:
    """The first target of each host, by host, in ``.config`` order."""
    first: dict[str, Target] = {}
    for target in targets:
        first.setdefault(target.node.host, target)
    return first
