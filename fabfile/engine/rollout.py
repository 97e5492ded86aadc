"""A rollout: pre-flight, staging, then the strategy's order of per-node steps, recorded.

The order of the phases is the safety argument. Pre-flight reads every target
node and changes nothing; staging sends bytes to every node but touches no
running release; only then does the strategy (`fabfile.engine.strategies`) have the
runtime (`fabfile.engine.runtimes`) make the release live, node by node in its order,
and the first failure stops it there.

`Rollout` runs the phases in that order; each has its module (`preflight`,
`staging`, then `pruning`); the history gets the run when it starts, each node as it
enters a phase, and one record at the end (`recording`) whose message says where it
stopped (`ending`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import time
import uuid
from collections.abc import Callable, Sequence

from ..app.appdir import AppDir
from ..app.credentials import redact
from ..app.overrides import LOGBACK, File
from ..app.pace import Pace
from ..app.release import Release
from ..cluster import logback, restartclaim
from ..cluster.balancer import Rotation
from ..cluster.holdings import Holdings
from ..cluster.node import Node
from ..errors import (
    ConfigError,
    DeployError,
    LockError,
    NodeError,
    NotReady,
    PreflightError,
    RolloutError,
    explain,
)
from ..records.history import Action, History, Result
from ..records.lock import Holder
from . import ending, fanout, readiness, recording, signals, warmup
from .batches import Finished
from .clusterlock import ClusterLock
from .events import Event, Events, Facts, Kind, Verdict
from .phase import Phase, Reporter
from .plan import Plan
from .preflight import preflight
from .pruning import prune
from .runtimes import Runtime
from .staging import stage
from .strategies.contract import Strategy
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
        lock: ClusterLock | None = None,
        events: Events | None = None,
    ) -> None:
        self.app = app
        self.plan = plan
        self.strategy = strategy
        self.reporter = reporter
        self.lock = lock  # the nodes' deploy lock: pre-flight takes it, its taker releases it
        self.targets = [Target(node(config)) for config in plan.nodes]
        self.started = time.monotonic()
        self.stages: dict[str, float] = {}
        self.run_id = run_id = uuid.uuid4().hex
        holder = restartclaim.record(Holder.me(plan.command), run_id)
        for target in self.targets:  # its temporary files and marks on the nodes carry it
            target.node.run_id, target.node.holder = run_id, holder
        self.runtime: Runtime = strategy.runtime(plan, self, run_id, holder)
        # on the release but for logback.xml: the target, and the file it will get live
        self.logging_live: dict[str, tuple[Target, logback.Setting]] = {}
        self.verdicts: list[tuple[float, str]] = []  # (seconds into the run, verdict)
        self.events = events or Events()  # hooks and notifications (`events`)
        self.facts: Facts | None = None  # once pre-flight passed and the start was told
        self.recorder = recording.Recorder(self)
        self.prepared: set[int] = set()  # ids of the targets whose copies were made (`prepare`)

    # -- driving ------------------------------------------------------------

    def run(self, stage_only: bool = False) -> list[Target]:
        """Pre-flight, stage, roll; always record the outcome and close connections.
        ``stage_only`` (`deploy stage`): pre-flight and staging, nothing live changes."""
        result, message = Result.OK, ""
        self.recorder.start()  # before anything changes: a history we cannot write refuses
        try:
            self._timed("preflight", lambda: preflight(self))
            if not stage_only:
                self._started()  # pre_deploy may stop it here: nothing changed yet
            prepares = self.strategy.prepares and not stage_only  # `Steps.prepare` checks
            self._timed("staging", lambda: stage(self, recheck=not prepares, prepare=prepares))
            if stage_only:
                for target in self.targets:
                    target.end(Outcome.STAGED, f"{target.sent} bytes sent")
                return self.targets
            self._timed("nodes", self._roll)
            self._timed("logging", self._logging_live)
            self._prune_unless_interrupted()
        except KeyboardInterrupt as interrupt:  # Ctrl-C, SIGTERM, SIGHUP (`signals`)
            result = Result.INTERRUPTED
            cause = signals.cause(interrupt)
            interrupted = ending.interruption(self.targets, self.plan.next_step, cause)
            message = "\n".join([interrupted, *getattr(interrupt, "__notes__", ())])
            raise signals.interrupted(message, interrupt) from None
        except DeployError as error:
            refused = isinstance(error, PreflightError | LockError)
            result = Result.REFUSED if refused else Result.FAILED
            message = explain(error)
            raise
        finally:
            self._end(result, message)
        return self.targets

    def _end(self, result: Result, message: str) -> None:
        """Record the run, then tell it (post hooks, notifications: slow, and the
        coordinator may be killed meanwhile, so the outcome is on disk first) and add what
        the hooks said. The lock is its taker's to release (`commands.locks.locked`): a
        deploy keeps it into its rollback in the same run; without one, close the nodes."""
        try:
            self.recorder.end(result, message)
            heard = len(self.events.notes)
            self._ended(result, message)
            if len(self.events.notes) > heard:
                self.recorder.hooks_heard()
        finally:
            if self.lock is None:
                for target in self.targets:
                    target.node.close()

    # -- what the listeners hear (`events`) ---------------------------------

    def _started(self) -> None:
        """Tell the start, with the run's facts; a ``pre_deploy`` hook may refuse it."""
        plan = self.plan
        runs = History(self.app.history_path).runs()
        number = next((run.number for run in runs if run.run_id == self.run_id), len(runs))
        facts = Facts(
            app=self.app.config.app,
            action=str(plan.action),
            version=plan.release.version,
            sha256=plan.release.war,
            coordinates=plan.release.coordinates,
            war=plan.release.war_name,
            hosts=tuple(dict.fromkeys(node.host for node in plan.nodes)),
            strategy=self.app.config.strategy,
            run=number,
            run_id=self.run_id,
            user=getpass.getuser(),
        )
        self.events.emit(Event(Kind.STARTED, facts))
        self.facts = facts

    def _ended(self, result: Result, message: str) -> None:
        """Tell how a run that was told started ended (a refused one changed nothing);
        a Ctrl-C in a hook here stops the hook, not the record."""
        if self.facts is None or result in (Result.REFUSED, Result.RUNNING):
            return
        if result == Result.OK:
            kind = Kind.ROLLED_BACK if self.plan.action == Action.ROLLBACK else Kind.FINISHED
        else:
            kind = Kind.FAILED
        seconds = round(time.monotonic() - self.started, 3)
        event = Event(kind, self.facts, str(result), redact(message), seconds=seconds)
        try:
            self.events.emit(event)
        except KeyboardInterrupt:
            self.note(f"{kind} hooks and notifications interrupted")
        except DeployError as error:  # the run's own outcome is what the user must read
            self.note(f"warning: {explain(error)}")

    def judged(
        self, batch: int, hosts: Sequence[str], verdict: str, reasons: str, window: str = "batch"
    ) -> None:
        if self.facts is not None:
            said = Verdict(batch, verdict, reasons, tuple(hosts), window)
            self.events.emit(Event(Kind.BATCH, self.facts, verdict=said))

    def switching(self, hosts: Sequence[str]) -> None:
        if self.facts is not None:
            self.events.emit(Event(Kind.SWITCHING, self.facts, hosts=tuple(hosts)))

    def _roll(self) -> None:
        try:
            self.strategy.run(self)
        except Finished as error:  # every node was reached: no "stopped there"
            error.add_note(ending.finished_summary(self.targets, self.plan.next_step))
            raise
        except RolloutError as error:
            error.add_note(ending.stopped_there(self.targets, self.plan.next_step))
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
        self.recorder.stage(name)
        try:
            step()
        finally:
            self.stages[name] = round(time.monotonic() - started, 3)

    # -- the steps a strategy may take (`Steps`) -------------------------------

    def set_phase(self, target: Target, phase: Phase, detail: str = "") -> None:
        target.phase = phase
        target.phases.append((phase.value, round(time.monotonic() - self.started, 3)))
        self.recorder.node(target)  # on disk before anyone is told
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
        self.verdicts.append((round(time.monotonic() - self.started, 3), text))

    def prepare(self, targets: Sequence[Target]) -> None:
        """`Steps.prepare`; the targets staging prepared already (`prepare_one`) are done."""
        todo = [target for target in targets if id(target) not in self.prepared]
        errors = [error for error in fanout.each(self.prepare_one, todo) if error]
        if errors:
            self.discard(targets)
            raise RolloutError(
                "preparing the release's files failed; no node was restarted, every node "
                "still runs what it ran:\n" + "\n".join(f"  {e}" for e in errors)
            )

    def prepare_one(self, target: Target, fresh: frozenset[str] = frozenset()) -> str:
        """Make one target's checked copies (`Node.prepare`; ``fresh``: the blobs staging
        just sent, unchecked); why not, or ''."""
        release = self.plan.release_for(target.config)
        self.prepared.add(id(target))  # tried: `discard` removes what a failure left too
        try:
            resent = target.node.prepare(release, self.plan.sources, fresh)
        except NodeError as error:
            self.set_phase(target, Phase.FAILED, str(error))
            return str(error)
        if resent:
            target.sent += resent
            self.note(
                f"{target.host}: a staged file had changed on the node; it was sent again "
                f"({resent} bytes) and checked"
            )
        return ""

    def discard(self, targets: Sequence[Target]) -> None:
        def one(target: Target) -> None:
            with contextlib.suppress(NodeError):  # else the next run's pre-flight does
                target.node.discard(self.plan.release_for(target.config))

        made = [t for t in targets if id(t) in self.prepared and t.outcome == Outcome.UNTOUCHED]
        fanout.each(one, made)

    def make_live(self, target: Target) -> None:
        try:
            self.runtime.make_live(target)
        except NotReady as error:  # which limit fired, and what the node needed before
            records = History(self.app.history_path).records()
            start = "restart" if self.strategy.restarts else "deploy"  # parallel: a version's
            error.add_note(readiness.missed(self.app.config, target.config, records, start))
            raise

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

    # -- what a node lacks (pre-flight, staging and the dry run ask) ----------

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

    # -- after the rollout -----------------------------------------------------

    def _prune_unless_interrupted(self) -> None:
        """The rollout is done by now: a Ctrl-C here stops the clean-up, not the record."""
        try:
            prune(self.targets, self.plan, self.reporter.note, self.lock)
        except KeyboardInterrupt:
            self.reporter.note("old releases not removed (interrupted); the next run does it")


def _but_logging(release: Release, like: Release) -> Release:
    """``release`` with ``like``'s logback.xml: equal when only the logging differs."""
    return dataclasses.replace(release, logback=like.logback)
