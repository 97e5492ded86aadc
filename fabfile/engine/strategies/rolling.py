"""Rolling: a batch of nodes at a time out of rotation, made live, verified, back,
warmed up.

``batch`` nodes at most are out of rotation at once (one by default); a
failure stops the rollout there unless ``max_failures`` lets it go on, and
the nodes not yet reached keep serving the release they ran (`fabfile.engine.batches`).

A node someone else took out of rotation (MAINT or DRAIN in haproxy, without the
tool's mark, `fabfile.cluster.takenout`) is theirs: it is deployed if asked, but
left as it was found and never a canary, unless ``--force``. haproxy's state is read
again just before a node is touched, so an operator's change during the run counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from ...app.config import AppConfig, NodeConfig
from ...cluster.balancer import Admin, Rotation, State
from ...cluster.inflight import Stopped
from ...errors import DeployError, NodeError
from ..phase import Phase
from .contract import Columns, Preview, Rollback, Setup, Unit
from .order import judged_in_batches

# The rollout's machinery (batches, targets, the restart runtime, warm-up, whose node is
# out of rotation and the lock file its mark is in) is imported where a run uses it:
# every command reads the strategy's declarations, and the status table (the command
# run most) reads nothing else (tests/unit/test_startup.py).
if TYPE_CHECKING:
    from ..plan import Plan
    from ..runtimes import Runtime
    from ..steps import Steps
    from ..target import Target


class Rolling:
    """One node at a time: out of rotation, make live, verify, back in, warm up."""

    name: ClassVar[str] = "rolling"
    title: ClassVar[str] = "rolling"
    rollback: ClassVar[Rollback] = Rollback.REDEPLOY
    unit: ClassVar[Unit] = Unit.NODES
    restarts: ClassVar[bool] = True
    prepares: ClassVar[bool] = True
    versioned: ClassVar[bool] = False
    preview: ClassVar[Preview] = Preview(
        "install + restart",
        held="{state} in haproxy, not by deploy: left out of rotation as found "
        "(--force puts it back)",
        order=judged_in_batches,
        rotation="haproxy: each node that restarts is drained first, and set ready again "
        "once /status names the release",
    )
    status: ClassVar[Columns] = Columns.ROTATION
    commands: ClassVar[tuple[str, ...]] = ()

    def __init__(self, setup: Setup) -> None:
        self.rotation = setup.rotation
        self.force = setup.force  # --force: a node someone else took out is put back too
        self.mine: set[str] = set()  # the nodes this run marked as taken out by it

    @classmethod
    def validate(cls, config: AppConfig) -> None:
        """Any ``.config`` will do: without haproxy, nodes restart in the traffic."""

    def kept(self, nodes: tuple[NodeConfig, ...]) -> frozenset[str]:
        return frozenset()

    def check(self, nodes: tuple[NodeConfig, ...]) -> list[str]:
        """Pre-flight: every node's haproxy server exists and sends traffic to it."""
        if self.rotation is None:
            return []
        try:
            return self.rotation.mismatches(nodes)
        except NodeError as error:
            return [f"{error}; without it no node can be drained"]

    def runtime(self, plan: Plan, steps: Steps, run_id: str, holder: str) -> Runtime:
        from ..runtimes.restart import Restart

        return Restart(plan, steps, run_id, holder)

    def run(self, steps: Steps) -> None:
        from ..batches import Batches, order

        todo = []
        held = self._held(steps.targets)
        for target in order(steps.targets):
            if steps.unchanged(target):
                self._skip(steps, target)
            else:
                todo.append(target)
        self._all_at_once(steps, todo)
        self.ramping = False
        self.reduced: list[Target] = []  # back in rotation at a share of their weight

        def after(verified: Sequence[Target], more: bool, canary: bool) -> None:
            reduced = {id(target) for target in self.reduced}
            ramped = [target for target in verified if id(target) in reduced]
            if more and verified:  # it protects the next batch's peers; none after the last
                steps.warm_up(verified, self.rotation if ramped else None)
            elif ramped and self.rotation is not None:  # nothing follows: full weight now
                for target in ramped:
                    self.rotation.set_weight(target.config, 100)
            for target in verified:
                detail = f"{target.restart_to_ready or 0:.1f} s to ready"
                steps.set_phase(target, Phase.DONE, detail)

        def one(target: Target) -> None:
            self._one(steps, target, ramp=self.ramping)

        runner = Batches(
            steps, self.rotation, on_failed_canary=self._canary_out, held=held, analyse=True
        )
        self.ramping = self.rotation is not None and len(todo) > 1
        if todo:  # each node's turn then only renames; the copies check the staged files
            steps.prepare(todo)
        try:
            runner.run(todo, one, after)
        except DeployError:
            steps.discard(todo)  # an interruption leaves them to the next pre-flight
            raise
        runner.finish()

    def _all_at_once(self, steps: Steps, todo: Sequence[Target]) -> None:
        """Say so when one batch takes every serving node out of rotation: nothing serves
        until the first is back, and requests fail meanwhile. The user may want it (as
        Capistrano restarts every server at once); one line says so before it happens."""
        from ..batches import split

        serving = [t for t in steps.targets if t.status is not None and t.status.ok]
        if self.rotation is None or len(serving) < 2:
            return
        for batch in split(todo, steps.pace, len(steps.targets)):
            if all(any(t is mine for mine in batch.targets) for t in serving):
                steps.note(
                    f"warning: batch = {steps.pace.batch} takes all {len(serving)} serving "
                    "nodes out of rotation at once: requests fail until the first is back; "
                    f"set batch below {len(serving)} for a deploy without downtime"
                )
                return

    def _skip(self, steps: Steps, target: Target) -> None:
        from ..target import Outcome

        target.end(Outcome.UNCHANGED)
        if self.rotation is not None:
            theirs = self._theirs(target)
            if theirs is not None:
                self._leave(steps, target, theirs)
            else:  # a run cut short may have left it drained: it is verified, so back in
                self.rotation.ready(target.config)
                if target.holdings is not None and target.holdings.taken_out is not None:
                    self._unmark(steps, target)
        steps.set_phase(target, Phase.SKIPPED, target.status.describe() if target.status else "")

    def _one(self, steps: Steps, target: Target, ramp: bool = False) -> None:
        rotation = self.rotation
        theirs = self._theirs(target)
        try:
            if rotation is not None:
                steps.set_phase(target, Phase.DRAINING, f"{theirs} as found" if theirs else "")
                if theirs is None:
                    self._mark(target)
                waited = (rotation.drain if theirs is None else rotation.idle)(target.config)
                if waited >= target.config.drain_timeout:
                    steps.note(
                        f"{target.host}: sessions still open after drain_timeout "
                        f"({target.config.drain_timeout:g} s); restarting anyway"
                    )
            steps.make_live(target)
        except (DeployError, KeyboardInterrupt) as error:
            if rotation is not None and theirs is not None:
                error.add_note(f"{target.host} is left {theirs} in haproxy, as it was found.")
            elif rotation is not None:
                self._out_of_rotation(steps, target, error)
            raise
        if rotation is None:
            return
        if theirs is not None:
            self._leave(steps, target, theirs)
            return
        from .. import warmup

        wanted = warmup.first_weight(target.config.warmup) if ramp else 100
        got = rotation.ready(target.config, wanted if target.config.warmup else 100)
        self._unmark(steps, target)
        if got < 100:
            self.reduced.append(target)

    # -- whose node is out of rotation ---------------------------------------------

    def _held(self, targets: Sequence[Target]) -> frozenset[str]:
        """The nodes someone else holds out of rotation now: never canaries."""
        if self.rotation is None or self.force:
            return frozenset()
        states = self.rotation.states(tuple(t.config for t in targets))
        return frozenset(t.host for t in targets if self._theirs(t, states[t.host]) is not None)

    def _theirs(self, target: Target, state: State | None = None) -> State | None:
        """The state someone else left the node out of rotation in (read now, when not
        given), or None: the run may take it out and must put it back."""
        if self.rotation is None or self.force or target.host in self.mine:
            return None
        if state is None:
            state = self.rotation.states((target.config,))[target.host]
        from ...cluster import takenout

        mark = target.holdings.taken_out if target.holdings is not None else None
        return state if takenout.theirs(state, mark) else None

    def _leave(self, steps: Steps, target: Target, state: State) -> None:
        """Say that a node someone else took out stays out, here and in the summary."""
        words = f"left {state} in haproxy as found (not taken out by deploy; --force puts it back)"
        target.detail = "; ".join(w for w in (target.detail, words) if w)
        target.left_out = state
        steps.note(f"{target.host}: {words}")

    def _mark(self, target: Target) -> None:
        target.node.take_out()
        self.mine.add(target.host)

    def _unmark(self, steps: Steps, target: Target) -> None:
        try:
            target.node.put_back()
        except NodeError as error:  # harmless while it is UP; a later run clears it
            steps.note(f"{target.host}: back in rotation, but {error}")
        self.mine.discard(target.host)

    def _canary_out(self, target: Target) -> None:
        """A canary judged Failed leaves rotation, marked as taken out by this run."""
        if self.rotation is not None:
            self._mark(target)
            self.rotation.set_state(target.config, Admin.MAINT)

    def _out_of_rotation(self, steps: Steps, target: Target, error: BaseException) -> None:
        """After a failure: a node whose JVM was not restarted still runs its verified
        release and goes back in; one that was restarted stays out. Says so on ``error``."""
        assert self.rotation is not None
        if _out_of_rotation(self.rotation, target, error):
            self._unmark(steps, target)


def _out_of_rotation(rotation: Rotation, target: Target, error: BaseException) -> bool:
    """After a failure: a node whose JVM was not restarted still runs its verified
    release and goes back in; one that was restarted stays out. Says so on ``error``.
    Whether it is back in rotation."""
    node = target.config
    interrupted = isinstance(error, KeyboardInterrupt)
    where = f"in haproxy ({node.lb_backend}/{node.lb_server})"
    until = "it takes no traffic until a deploy or rollback verifies it."
    if not target.restarted:
        state, note = Admin.READY, ""
    elif interrupted:
        state, note = Admin.DRAIN, f"{target.host} is left in drain {where} mid-restart: {until}"
    else:
        state, note = Admin.MAINT, f"{target.host} is left in maintenance {where}: {until}"
    try:
        if state == Admin.READY:
            rotation.ready(node)
        else:
            rotation.set_state(node, state)
    except (NodeError, Stopped) as lb_error:  # Stopped: a balancer over SSH, after Ctrl-C
        note = f"{target.host} could not be set to {state} {where}: {lb_error}; {until}"
        state = Admin.MAINT  # not known to be back: the mark stays
    if note:
        error.add_note(note)
    return state == Admin.READY
