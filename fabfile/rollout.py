"""A rollout: pre-flight, staging, then the strategy's per-node steps, recorded.

The order of the phases is the safety argument. Pre-flight reads every target
node and changes nothing; staging sends bytes to every node but touches no
running release; only then does the strategy restart nodes, one at a time for
the rolling strategy, and the first failure stops it there.
"""

from __future__ import annotations

import dataclasses
import getpass
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

from . import history, listener, probe, restartlock
from .appdir import AppDir
from .config import NodeConfig
from .errors import DeployError, Interrupted, NodeError, PreflightError, RolloutError
from .lock import Holder
from .node import Inventory, Node
from .phase import Phase, Reporter
from .probe import Status
from .release import Release

T = TypeVar("T")


@dataclasses.dataclass
class Target:
    """One node of the rollout and what is known about it so far."""

    node: Node
    inventory: Inventory | None = None
    status: Status | None = None
    phase: Phase = Phase.PENDING
    outcome: str = "untouched"
    sent: int = 0
    restart_to_ready: float | None = None
    restarted: bool = False  # the restart command was started: the running JVM may change
    restarted_at: float | None = None  # the node's uptime when its restart was claimed
    stale_claim: str = ""  # a restart claim judged over, which this run may take over

    @property
    def host(self) -> str:
        return self.node.host

    @property
    def config(self) -> NodeConfig:
        return self.node.config


class Strategy(Protocol):
    """Decides the order of the per-node steps once every node is staged."""

    name: str

    def check(self, nodes: tuple[NodeConfig, ...]) -> list[str]:
        """Pre-flight problems of the strategy's own (e.g. the load balancer's)."""
        ...

    def run(self, rollout: Rollout) -> None: ...


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to roll out where: the release, the local copy of each blob, the nodes."""

    action: str  # "deploy" or "rollback"
    release: Release
    sources: dict[str, Path]  # sha256 -> file on the coordinator
    nodes: tuple[NodeConfig, ...]
    force: bool = False
    next_step: str = ""  # the sentence that tells the user how to undo or finish
    command: str = "deploy"  # the command line that runs this plan again


class Rollout:
    """Runs one plan against real nodes and writes its history entry."""

    def __init__(self, app: AppDir, plan: Plan, strategy: Strategy, reporter: Reporter) -> None:
        self.app = app
        self.plan = plan
        self.strategy = strategy
        self.reporter = reporter
        self.targets = [Target(Node(config)) for config in plan.nodes]
        self.started = time.monotonic()
        self.stages: dict[str, float] = {}
        self.run_id = uuid.uuid4().hex  # tells this run's restart claims from others'
        self.holder = restartlock.record(Holder.me(plan.command), self.run_id)

    # -- driving ------------------------------------------------------------

    def run(self) -> list[Target]:
        """Pre-flight, stage, roll; always record the outcome and close connections."""
        outcome, message = "ok", ""
        try:
            self._timed("preflight", self.preflight)
            self._timed("staging", self.stage)
            self._timed("nodes", lambda: self.strategy.run(self))
            self.prune()
        except KeyboardInterrupt as interrupt:
            outcome, message = "interrupted", self._interruption()
            if str(interrupt):
                message += f"\n{interrupt}"
            raise Interrupted(message) from None
        except PreflightError as error:
            outcome, message = "refused", str(error)
            raise
        except DeployError as error:
            outcome, message = "failed", str(error)
            raise
        finally:
            self._record(outcome, message)
            for target in self.targets:
                target.node.close()
        return self.targets

    def _timed(self, name: str, step: Callable[[], None]) -> None:
        """Run one stage of the rollout and keep its duration for the history."""
        started = time.monotonic()
        try:
            step()
        finally:
            self.stages[name] = round(time.monotonic() - started, 3)

    def set_phase(self, target: Target, phase: Phase, detail: str = "") -> None:
        target.phase = phase
        self.reporter.phase(target.host, phase, detail)

    # -- pre-flight ---------------------------------------------------------

    def preflight(self) -> None:
        """Read every target in parallel; refuse before any release changes if one is unfit.

        (It does create the releases directory and remove partial uploads.)
        """
        errors = [e for e in _parallel(self._check, self.targets) if e]
        errors += self.strategy.check(self.plan.nodes)
        if errors:
            raise PreflightError(
                f"pre-flight refused on {len(errors)} of {len(self.targets)} node(s); "
                "nothing was changed:\n" + "\n".join(f"  {e}" for e in errors)
            )

    def _check(self, target: Target) -> str:
        self.set_phase(target, Phase.CHECKING)
        try:
            target.inventory = target.node.inventory()
            if target.inventory.claim is not None:
                over = self.await_claim(target, target.inventory.claim)
                if over:
                    target.node.clear_claim(over)
        except NodeError as error:
            self.set_phase(target, Phase.FAILED, str(error))
            return str(error)
        target.status = probe.probe(target.config)
        return self._room(target, target.inventory)

    def await_claim(self, target: Target, claim: restartlock.Claim) -> str:
        """Wait while another restart of this node is in flight; return the claim
        to take over once it is over ('' when it was released).

        Bounded by the claim's own expiry, and by twice our ``ready_timeout``.
        """
        node = target.node
        deadline = time.monotonic() + 2 * target.config.ready_timeout
        said = False
        found, report = node.restart_claim()
        while found is not None and found.in_flight(report, self.run_id):
            if not said:
                said = True
                at_most = min(found.expires - report.uptime, deadline - time.monotonic())
                self.reporter.note(
                    f"{target.host}: a restart started {report.uptime - found.at:.1f} s ago by "
                    f"{found.describe()} is still under way; waiting until it is over "
                    f"(at most {at_most:.0f} s)"
                )
            if time.monotonic() >= deadline:
                raise NodeError(
                    f"{target.host}: a restart by {found.describe()} is still in flight after "
                    f"{2 * target.config.ready_timeout:g} s; run the deploy again once it is over"
                )
            time.sleep(min(0.2, target.config.poll_interval * 4))
            found, report = node.restart_claim()
        return found.line if found is not None else ""

    def _room(self, target: Target, inventory: Inventory) -> str:
        missing = self.missing(target)
        unknown = [sha for sha in missing if sha not in self.plan.sources]
        if unknown:
            return (
                f"{target.host}: does not hold {len(unknown)} file(s) of {self.plan.release.label} "
                "and the coordinator has no copy; deploy that WAR explicitly"
            )
        need_kib = sum(self.plan.sources[sha].stat().st_size for sha in missing) // 1024
        need_kib += target.config.min_free_mb * 1024
        if inventory.free_kib < need_kib:
            return (
                f"{target.host}: {inventory.free_kib // 1024} MiB free in "
                f"{target.config.releases_dir}, {need_kib // 1024} MiB needed; free some space"
            )
        return ""

    def missing(self, target: Target) -> list[str]:
        held = target.inventory.blobs if target.inventory else frozenset()
        return sorted(self.plan.release.blobs - held)

    def unchanged(self, target: Target) -> bool:
        """Already runs this release and says so: verify and skip, unless --force."""
        release, status = self.plan.release, target.status
        return (
            not self.plan.force
            and target.inventory is not None
            and target.inventory.current == release
            and status is not None
            and status.ok
            and (status.coordinates, status.version) == (release.coordinates, release.version)
        )

    # -- staging ------------------------------------------------------------

    def stage(self) -> None:
        """Send each node the blobs it lacks, in parallel, before any restart."""
        errors = [e for e in _parallel(self._stage, self.targets) if e]
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

    # -- per-node steps, called by strategies ----------------------------------

    def install_and_restart(self, target: Target) -> None:
        """Install, restart, verify; any failure becomes one message with what to do."""
        try:
            self.set_phase(target, Phase.INSTALLING)
            target.outcome = "installing"
            target.node.install(self.plan.release)
            target.outcome = "installed, not verified"
            self.set_phase(target, Phase.RESTARTING)
            self._restart_and_verify(target)
        except NodeError as error:
            target.outcome = f"failed: {error}"
            self.set_phase(target, Phase.FAILED, str(error))
            raise RolloutError(self._failure(target, str(error))) from None

    def _restart_and_verify(self, target: Target) -> None:
        """When the version does not change, a 200 proves a restart only if the node
        was seen down since: a watcher polls while the restart command runs, which
        catches the down window of a restart command that waits for the new JVM.

        The restart runs under the node's restart claim, released once the new JVM
        is verified or has failed; an interruption leaves it, since the restart
        may still be under way (`fabfile.restartlock`)."""
        before = target.status
        same = before is not None and before.ok and before.version == self.plan.release.version
        watch = probe.DownWatch(target.config) if same else None
        try:
            restarted = self._claimed_restart(target)
        finally:
            saw_down = watch.stop() if watch else False
        try:
            self.verify(target, restarted, must_go_down=same and not saw_down)
        except DeployError:
            self._release_claim(target)
            raise
        self._release_claim(target)

    def _claimed_restart(self, target: Target) -> float:
        """Claim the node's restart and run it; wait out a restart in flight first."""
        for _ in range(5):
            restarted = time.monotonic()
            target.restarted = True
            blocked, at = target.node.restart(self.holder, self.run_id, target.stale_claim)
            if blocked is None:
                target.restarted_at = at
                return restarted
            target.restarted = False
            target.stale_claim = self.await_claim(target, blocked)
        raise NodeError(f"{target.host}: other restarts keep claiming the node; try again later")

    def _release_claim(self, target: Target) -> None:
        try:
            target.node.release_restart(self.run_id)
        except NodeError as error:  # it expires on its own; the next run says so
            self.reporter.note(f"could not release the restart claim: {error}")

    def verify(self, target: Target, since: float, must_go_down: bool) -> None:
        """Wait for the node to report the release; raise `RolloutError` if it does not."""
        release = self.plan.release
        self.set_phase(target, Phase.WAITING)
        ready, status, steady = probe.wait_ready(
            target.config, release.coordinates, release.version, must_go_down=must_go_down
        )
        target.status = status
        if not ready and must_go_down and status.ok:
            status = dataclasses.replace(
                status, ok=False, reason=f"{status.describe()} from the old JVM: it never restarted"
            )
        if not ready:
            target.outcome = f"failed: {status.describe()}"
            self.set_phase(target, Phase.FAILED, status.describe())
            raise RolloutError(self._failure(target, self._unverified(target, status, steady)))
        target.restart_to_ready = time.monotonic() - since
        target.outcome = "deployed"

    def _unverified(self, target: Target, status: probe.Status, steady: bool) -> str:
        """What /status said instead of the release, and for how long."""
        release, node = self.plan.release, target.config
        within = "" if steady else f" within {node.ready_timeout:g} s"
        how = f" steadily for {node.error_grace:g} s" if steady else ""
        line = (
            f"{target.host}: not verified{within}: {status.url} answered "
            f"{status.describe()!r}{how}, expected 200 '{release.coordinates} {release.version}'."
        )
        if status.code == 200:  # another version answers: who holds the port?
            line += self._port_holder(target)
        return line

    def _port_holder(self, target: Target) -> str:
        """Why the old version may still answer, read on the node ('' if unreadable)."""
        try:
            report = target.node.port_report()
        except NodeError:
            return ""
        why = listener.explain(report, target.host, target.restarted_at, self.plan.command)
        return f"\n{why}" if why else ""

    def warm_up(self, target: Target) -> None:
        self.set_phase(target, Phase.WARMING, f"{target.config.warmup:g} s")
        time.sleep(target.config.warmup)

    def _failure(self, target: Target, seen: str) -> str:
        """What was seen on which node, who is on what now, and the command to run."""
        done = [t.host for t in self.targets if t.outcome in ("deployed", "unchanged")]
        left = [t.host for t in self.targets if t.outcome == "untouched"]
        first = seen if seen.startswith(f"{target.host}:") else f"{target.host}: {seen}"
        lines = [
            first,
            f"Stopped there. On the new release: {', '.join(done) or 'none'}. "
            f"Untouched (still on their old release): {', '.join(left) or 'none'}.",
        ]
        if self.plan.next_step:
            lines.append(self.plan.next_step)
        return "\n".join(lines)

    def prune(self) -> None:
        """Drop blobs of releases older than ``keep_releases``, on every node at once."""
        _parallel(self._prune, self.targets)

    def _prune(self, target: Target) -> None:
        if target.inventory is None:
            return
        keep = self.plan.release.blobs | _kept_blobs(target)
        try:
            target.node.prune(target.inventory, keep)
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
            if target.phase.changes_node and target.outcome != "deployed":
                target.outcome = f"interrupted while {target.phase.value}"
        if where is None:
            return "interrupted before any node was contacted; nothing changed"
        return (
            f"interrupted at node {where.host} in phase '{where.phase.value}'. "
            "Run `deploy` to see what each node runs; run the same deploy again to finish"
            + (f". {self.plan.next_step}" if self.plan.next_step else "")
        )

    def _record(self, outcome: str, message: str) -> None:
        release = self.plan.release
        entry = {
            "action": self.plan.action,
            "finished": history.now(),
            "seconds": round(time.monotonic() - self.started, 3),
            "stages": self.stages,
            "user": getpass.getuser(),
            "from": socket.gethostname(),
            "artifact": release.war_name,
            "version": release.version,
            "sha256": release.war,
            "release": dataclasses.asdict(release),
            "outcome": outcome,
            "message": message,
            "hosts": {t.host: _host_record(t) for t in self.targets},
        }
        history.History(self.app.history_path).append(entry)


def _host_record(target: Target) -> dict[str, object]:
    return {
        "outcome": target.outcome,
        "bytes_sent": target.sent,
        "restart_to_ready": (
            round(target.restart_to_ready, 3) if target.restart_to_ready is not None else None
        ),
    }


def _kept_blobs(target: Target) -> frozenset[str]:
    """Blobs of the node's newest ``keep_releases`` distinct releases (at least 2)."""
    assert target.inventory is not None
    keep_count = max(2, target.config.keep_releases)
    kept: list[Release] = []
    for release in reversed(target.inventory.installed):
        if release not in kept:
            kept.append(release)
        if len(kept) >= keep_count:
            break
    blobs: set[str] = set()
    for release in kept:
        blobs |= release.blobs
    if target.inventory.current is not None:
        blobs |= target.inventory.current.blobs
    return frozenset(blobs)


def _parallel(work: Callable[[Target], T], targets: Sequence[Target]) -> list[T]:
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(targets))) as pool:
        return list(pool.map(work, targets))
