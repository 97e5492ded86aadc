"""A strategy's per-node work, batch by batch: the verdicts, the failure threshold.

A strategy says what to do to one node (``one``) and after a batch (``after``);
`Batches` decides how many at once (`split`, by `fabfile.app.pace`), waits for the canary's
verdict (`fabfile.engine.canary`), judges the nodes on the new release again after every
later batch (over the window the strategy chose, `Window`) and for ``watch`` seconds
after the last, does what
``on_failure`` says with a Failed verdict, counts failures over the whole run and, on a
terminal, offers guided failure: retry the node, skip it, or roll back.

A batch of one runs in the caller's thread, so Ctrl-C stops it at once, as
it always did; a bigger batch runs its nodes in threads, and a Ctrl-C takes
effect once the nodes in flight are verified or have failed (`fabfile.engine.fanout`).
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable, Collection, Sequence

from ..app.config import NodeConfig
from ..app.pace import Pace
from ..cluster.balancer import Admin, Counters, Rotation
from ..errors import DeployError, RolloutError, explain
from ..words import some
from . import canary, fanout
from .steps import Steps
from .target import Outcome, Target

One = Callable[[Target], None]
# after a batch: its verified nodes, whether more batches come, whether it was a canary one
After = Callable[[Sequence[Target], bool, bool], None]
GUIDE = "r", "s", "b"
WATCH_LINES = 5.0  # seconds between two lines of the watch window's verdict so far


def order(targets: Sequence[Target]) -> list[Target]:
    """Nodes whose /status did not answer Ok first (they serve nobody anyway), then
    the rest in ``.config`` order."""
    return sorted(targets, key=lambda target: bool(target.status and target.status.ok))


@dataclasses.dataclass(frozen=True)
class Batch:
    """Nodes changed together; ``canary`` ones are judged before any other goes."""

    targets: tuple[Target, ...]
    canary: bool = False


def split(
    targets: Sequence[Target], pace: Pace, total: int, held: Collection[str] = ()
) -> list[Batch]:
    """The batches of a run: the first ``canary`` healthy targets (in batches of at
    most ``batch``), then the rest. ``total`` is the run's node count, for percentages.
    A node in ``held`` (someone else keeps it out of rotation) takes no traffic to
    judge: never a canary."""
    size = pace.size(total)
    healthy = [
        t for t in targets if t.status is not None and t.status.ok and not (held and t.host in held)
    ]
    chosen = (healthy or list(targets))[: pace.canary]  # judge the release, not a sick node
    canaries = [t for t in targets if any(t is c for c in chosen)]
    rest = [t for t in targets if not any(t is c for c in chosen)]
    if not rest:  # nothing would wait for the verdict: no canary
        canaries, rest = [], canaries
    batches = [Batch(tuple(canaries[i : i + size]), True) for i in range(0, len(canaries), size)]
    batches += [Batch(tuple(rest[i : i + size])) for i in range(0, len(rest), size)]
    return batches


class Window(enum.Enum):
    """Where the window a later batch is judged over starts; it ends once the batch is over."""

    # rolling: a node takes traffic once back in rotation, so its warm-up is the window
    WARM_UP = "after the batch is verified"
    # parallel: a version serves new sessions once deployed, before it is verified
    BATCH = "when the batch starts"


class RollBack(RolloutError):
    """Roll back in the same run: the user chose it after a failure (guided failure), or a
    Failed verdict with ``on_failure = rollback``."""


class Finished(RolloutError):
    """The run went through every batch, past failures within max_failures."""


class Batches:
    """Runs ``one`` over the targets in batches; raises `RolloutError` to stop."""

    def __init__(
        self,
        steps: Steps,
        rotation: Rotation | None,
        units: int = 0,
        on_failed_canary: One | None = None,
        held: Collection[str] = (),
        pace: Pace | None = None,
        analyse: bool = False,
        window: Window = Window.WARM_UP,
        out_words: str = "the nodes on it left rotation",
    ) -> None:
        self.steps = steps
        self.pace = pace or steps.pace  # blue/green: its batches are idle_starts hosts
        self.rotation = rotation
        self.held = held  # labels someone else keeps out of rotation: never canaries
        self.units = units or len(steps.targets)  # what percentages count: nodes (hosts)
        self.on_failed_canary = on_failed_canary
        self.failed: list[tuple[Target, RolloutError]] = []
        self.skipped: list[Target] = []  # failed, and the user chose to go on past it
        # judge every batch and watch after the last: the strategy sends traffic to each
        # batch as it goes (rolling), and this run is no rollback
        self.analyse = analyse and self.pace.judged
        self.window = window
        self.out_words = out_words  # what on_failure = stop did to the judged nodes
        self.watching = self.pace.judged and self.pace.watch > 0  # a window after the last
        self.before: dict[str, Counters] = {}  # every server's counters at the start

    def run(self, todo: Sequence[Target], one: One, after: After) -> None:
        """Every batch, or up to the failure that stops the run (raised). Failures within
        ``max_failures`` are in `failed`; `finish` raises them once the strategy is done."""
        steps, pace = self.steps, self.pace
        total = self.units
        groups = split(todo, pace, total, self.held)
        if self.analyse or self.watching:
            self.before = canary.counters(self.rotation, self._configs(steps.targets))
        live: list[Target] = []  # verified on the release, so far
        for number, batch in enumerate(groups, start=1):
            name = f"batch {number}/{len(groups)}" + (" (canary)" if batch.canary else "")
            if len(groups) > 1:
                steps.note(f"{name}: {_names(batch.targets)}")
            more = number < len(groups)
            opened = self._opened(more, batch.canary)
            started = time.monotonic()
            failed = self._each(batch.targets, one)
            if len(groups) > 1 and len(batch.targets) > 1:
                steps.note(self._summary(name, batch.targets, failed, started))
            stop = self._stop(failed, batch.canary, pace.tolerated(total), more)
            bad = {id(target) for target, _ in failed} | {id(t) for t in self.skipped}
            verified = [t for t in batch.targets if id(t) not in bad]
            live += verified
            window = self._window_start(live, more, batch.canary, opened)
            after(verified, more and stop is None, batch.canary)
            if stop is not None:
                raise stop
            if batch.canary and more and not groups[number].canary:
                canaries = [t for b in groups if b.canary for t in b.targets]
                self._gate([t for t in canaries if id(t) not in bad], number)
            elif window is not None:
                self._after_batch(number, name, live, window)
        if self.analyse:
            self.watch(live, len(groups))

    def _summary(
        self,
        name: str,
        targets: Sequence[Target],
        failed: Sequence[tuple[Target, RolloutError]],
        started: float,
    ) -> str:
        """A batch's line once it is over: how many verified, which failed, how long."""
        skipped = [t for t in targets if any(t is s for s in self.skipped)]
        words = [f"{len(targets) - len(failed) - len(skipped)} verified"]
        if failed:
            words.append(f"{len(failed)} failed ({_names([t for t, _ in failed])})")
        if skipped:
            words.append(f"{len(skipped)} skipped ({_names(skipped)})")
        return f"{name}: {', '.join(words)} in {time.monotonic() - started:.1f} s"

    def finish(self) -> None:
        """Raise the failures the run went on past (skipped ones included): the command
        still fails, since those nodes are not on the release."""
        if self.failed or self.skipped:
            raise self._finished_with_failures(self.pace.tolerated(self.units))

    # -- one batch ------------------------------------------------------------

    def _each(self, targets: Sequence[Target], one: One) -> list[tuple[Target, RolloutError]]:
        """Run ``one`` on every target of the batch; the failures, after guidance."""
        if len(targets) == 1:
            results = {id(targets[0]): _attempt(one, targets[0])}
        else:  # hosts at once; the instances of one host one after the other (their
            # restarts share the host's restart claim)
            by_host: dict[str, list[Target]] = {}
            for target in targets:
                by_host.setdefault(target.node.host, []).append(target)

            def host(mine: list[Target]) -> list[RolloutError | None]:
                return [_attempt(one, target) for target in mine]

            done = fanout.each(host, list(by_host.values()))
            results = {
                id(t): error
                for mine, errors in zip(by_host.values(), done, strict=True)
                for t, error in zip(mine, errors, strict=True)
            }
        failed = []
        for target in targets:
            error = results[id(target)]
            if error is not None:
                error = self._guided(target, error, one)
            if error is not None:
                failed.append((target, error))
        return failed

    def _guided(self, target: Target, error: RolloutError, one: One) -> RolloutError | None:
        """On a terminal: retry the node, skip it (left out of rotation), or roll back.
        None when a retry verified it or the user skipped it."""
        while True:
            key = self.steps.ask(
                f"{explain(error)}\n{target.host} failed. [r]etry it, [s]kip it (it stays out "
                "of rotation), or roll [b]ack?",
                "".join(GUIDE),
            )
            if not key:
                return error
            _decided(target, key)
            if key == "b":
                raise RollBack(f"{target.host} failed and you chose to roll back") from None
            if key == "s":
                self.skipped.append(target)
                target.end(Outcome.FAILED, f"{target.detail}; skipped (guided failure)")
                return None
            retried = _attempt(one, target)
            if retried is None:
                target.detail = "deployed on retry (guided failure)"
                return None
            error = retried

    def _stop(
        self, failed: list[tuple[Target, RolloutError]], canary: bool, limit: int, more: bool
    ) -> RolloutError | None:
        """The error that stops the run here, or None to go on past these failures."""
        if not failed:
            return None
        self.failed += failed
        if canary:
            error = _joined(failed)
            error.add_note("A canary failed: the other nodes were not touched.")
            return error
        if len(self.failed) > limit:
            error = _joined(failed) if limit == 0 else _joined(self.failed)
            if limit:
                error.add_note(
                    f"{len(self.failed)} node(s) failed, more than max_failures ({limit}); "
                    "stopped there."
                )
            return error
        if more:
            names = ", ".join(target.host for target, _ in failed)
            self.steps.note(
                f"{names} failed; {len(self.failed)} of "
                f"max_failures ({limit}) used, going on:\n{explain(_joined(failed))}"
            )
        return None

    def _finished_with_failures(self, limit: int) -> Finished:
        names = ", ".join(target.host for target, _ in self.failed)
        words = [f"within max_failures ({limit}): {names}"] if self.failed else []
        if self.skipped:
            words.append(f"skipped by you: {', '.join(t.host for t in self.skipped)}")
        error = Finished(
            f"finished with {len(self.failed) + len(self.skipped)} failed node(s), "
            f"{'; '.join(words)}"
        )
        for _, failure in self.failed:
            error.add_note(explain(failure))
        return error

    # -- verdicts after every batch and in the watch window -------------------------

    def _judges(self, more: bool, canary_batch: bool) -> bool:
        """Whether a verdict follows this batch: not after the canaries (they have their
        own gate) nor after the last batch (the watch window judges then)."""
        return self.analyse and more and self.rotation is not None and not canary_batch

    def _opened(self, more: bool, canary_batch: bool) -> dict[str, Counters] | None:
        """The counters read as the batch starts, when the window starts with it
        (`Window.BATCH`); None otherwise."""
        if self.window is not Window.BATCH or not self._judges(more, canary_batch):
            return None
        return canary.counters(self.rotation, self._configs(self.steps.targets))

    def _window_start(
        self,
        live: Sequence[Target],
        more: bool,
        canary_batch: bool,
        opened: dict[str, Counters] | None = None,
    ) -> dict[str, Counters] | None:
        """The counters a later batch is judged from: ``opened`` as the batch started
        (`Window.BATCH`), or read now, before its warm-up (`Window.WARM_UP`); None when
        no verdict follows this batch or no node of it is on the release."""
        if not (live and self._judges(more, canary_batch)):
            return None
        if opened is not None:
            return opened
        return canary.counters(self.rotation, self._configs(self.steps.targets))

    def _after_batch(
        self, number: int, name: str, live: Sequence[Target], window: dict[str, Counters]
    ) -> None:
        """Judge every node on the release so far over the batch's window (`Window`);
        Inconclusive (too few requests) goes on, and says so."""
        watch = self._watching(live, 0.0)
        now = canary.counters(self.rotation, self._configs(self.steps.targets))
        judgement = canary.judge_once(watch, now, window)
        going_on = "; going on" if judgement.verdict == canary.Verdict.INCONCLUSIVE else ""
        self.steps.note(f"{name}: {judgement}{going_on}")
        self.steps.record_verdict(f"{name}: {judgement}")
        hosts = [t.host for t in live]
        self.steps.judged(number, hosts, str(judgement.verdict), judgement.detail)
        if judgement.verdict == canary.Verdict.FAILED:
            self._failed(name, judgement, live)

    def judge_window(
        self, number: int, name: str, live: Sequence[Target], window: dict[str, Counters]
    ) -> None:
        """Judge ``live`` from the counters ``window`` to now, for a strategy that
        batches on its own (blue/green's switches); a Failed verdict does what
        ``on_failure`` says."""
        self._after_batch(number, name, live, window)

    def watch(self, live: Sequence[Target], last: int = 0) -> None:
        """Judge the nodes on the release for ``watch`` seconds after the last batch (or,
        blue/green, the last switch: ``last`` numbers it for the event), a line every few
        seconds; nothing without a watch window or a node on the release."""
        if not (self.watching and live):
            return
        seconds = self.pace.watch
        self.steps.note(f"watch: {_names(live)} for {seconds:g} s")
        shown = [time.monotonic()]

        def tick(so_far: canary.Judgement) -> None:
            if time.monotonic() - shown[0] >= WATCH_LINES:
                shown[0] = time.monotonic()
                self.steps.note(f"watch: {so_far.detail}")

        judgement = canary.judge(self._watching(live, seconds), self.rotation, tick)
        self.steps.note(f"watch: {judgement}")
        self.steps.record_verdict(f"watch: {judgement}")
        hosts = [t.host for t in live]
        self.steps.judged(last, hosts, str(judgement.verdict), judgement.detail, "watch")
        if judgement.verdict == canary.Verdict.FAILED:
            self._failed("watch", judgement, live)

    def _watching(self, live: Sequence[Target], seconds: float) -> canary.Watch:
        release, pace = self.steps.release, self.pace
        others = [  # the nodes a comparison means something with: not on the release
            t
            for t in self.steps.targets
            if not any(t is mine for mine in live) and t.outcome != Outcome.UNCHANGED
        ]
        return canary.Watch(
            self._configs(live),
            self._configs(others),
            release.coordinates,
            release.version,
            seconds,
            pace.canary_min_requests,
            pace.max_error_rate,
            pace.max_slowdown,
            before=self.before,
            who="the nodes on the release",
        )

    def _failed(
        self,
        name: str,
        judgement: canary.Judgement,
        judged: Sequence[Target],
        out_first: bool = False,
    ) -> None:
        """What ``on_failure`` says: stop (the judged nodes leave rotation while nodes on
        the old release serve), ask, or roll back in this run (``out_first``: the judged
        nodes leave rotation before, as failed canaries always do). Returns only when the
        user goes on."""
        policy = self.pace.on_failure
        if policy == "ask":
            key = self.steps.ask(f"{name}: {judgement}. [g]o on, roll [b]ack or [s]top?", "gbs")
            if key == "g":
                self.steps.record_verdict(f"{name}: the user went on")
                return
            policy = "rollback" if key == "b" else "stop"
        serving_old = [
            t
            for t in self.steps.targets
            if not any(t is mine for mine in judged)
            and t.outcome == Outcome.UNTOUCHED
            and t.host not in self.held
        ]
        if serving_old and (policy == "stop" or out_first):
            for target in judged:
                self._out(target, str(judgement))
        if policy == "rollback":
            raise RollBack(f"{name}: {judgement}; on_failure = rollback")
        if serving_old:
            raise RolloutError(f"{name}: {judgement}; stopped, {self.out_words}")
        raise RolloutError(
            f"{name}: {judgement}; stopped, and they keep serving: no node on the old "
            "release is in rotation to take their place"
        )

    @staticmethod
    def _configs(targets: Sequence[Target]) -> tuple[NodeConfig, ...]:
        return tuple(target.config for target in targets)

    # -- the canary's gate ------------------------------------------------------

    def _gate(self, canaries: Sequence[Target], batch: int) -> None:
        """Go on past the canaries only on a Successful verdict (or the user's yes);
        ``batch``: the number of the batch that ends the canaries."""
        if not canaries:
            return
        steps, pace = self.steps, self.pace
        names = ", ".join(t.host for t in canaries)
        hosts = [t.host for t in canaries]
        if pace.confirm:
            question = f"canary {names} verified on the release. Go on with the rest? [y/n]"
            key = steps.ask(question, "yn")
            steps.note(f"canary: {'confirmed' if key == 'y' else 'not confirmed'} by the user")
            said = "confirmed" if key == "y" else "not confirmed"
            steps.record_verdict(f"canary {names}: {said}")
            steps.judged(batch, hosts, said, "the user was asked", "canary")
            if key != "y":
                raise RolloutError(f"stopped after the canary {names}: not confirmed")
            return
        release = steps.release
        others = tuple(t.config for t in steps.targets if t not in canaries)
        watch = canary.Watch(
            tuple(t.config for t in canaries),
            others,
            release.coordinates,
            release.version,
            pace.canary_wait,
            pace.canary_min_requests,
            pace.max_error_rate,
            pace.max_slowdown,
        )
        steps.note(f"canary {names}: watching for {pace.canary_wait:g} s")
        judgement = canary.judge(watch, self.rotation)
        steps.note(f"canary {names}: {judgement}")
        steps.record_verdict(str(judgement))
        steps.judged(batch, hosts, str(judgement.verdict), judgement.detail, "canary")
        if judgement.verdict == canary.Verdict.SUCCESSFUL:
            return
        if judgement.verdict == canary.Verdict.INCONCLUSIVE:
            key = steps.ask(f"canary {names} inconclusive. Go on with the rest? [y/n]", "yn")
            if key == "y":
                steps.record_verdict(f"{judgement}; the user went on")
                return
            raise RolloutError(f"canary {names}: {judgement}; stopped (no one said go on)")
        if pace.on_failure != "stop":
            self._failed(f"canary {names}", judgement, canaries, out_first=True)
            return
        for target in canaries:
            self._out(target, str(judgement))
        raise RolloutError(f"canary {names}: {judgement}; the other nodes were not touched")

    def _out(self, target: Target, why: str) -> None:
        """A canary judged Failed leaves rotation: it serves nobody until a deploy or
        rollback verifies it (blue/green: its host switches back to the old colour)."""
        target.end(Outcome.FAILED, why)
        try:
            if self.on_failed_canary is not None:
                self.on_failed_canary(target)
            elif self.rotation is not None:
                self.rotation.set_state(target.config, Admin.MAINT)
            else:
                self.steps.note(f"{target.host} keeps serving: no load balancer to take it out")
        except DeployError as error:
            self.steps.note(f"{target.host} could not be taken out of rotation: {error}")


def _attempt(one: One, target: Target) -> RolloutError | None:
    """The node's failure, if any: a `NodeError` on the way (haproxy refusing a state,
    say) is the node's failure too, so max_failures and guided failure see it."""
    try:
        one(target)
    except RolloutError as error:
        return error
    except DeployError as error:
        if target.outcome != Outcome.FAILED:
            target.end(Outcome.FAILED, str(error))
        failure = RolloutError(str(error))
        for note in getattr(error, "__notes__", ()):
            failure.add_note(note)
        return failure
    return None


def _names(targets: Sequence[Target]) -> str:
    return some([t.host for t in targets])


def _decided(target: Target, key: str) -> None:
    word = {"r": "retry", "s": "skip", "b": "roll back"}[key]
    target.guided.append(word)


def _joined(failed: Sequence[tuple[Target, RolloutError]]) -> RolloutError:
    """One failure as it was raised; several as one error listing each."""
    if len(failed) == 1:
        return failed[0][1]
    error = RolloutError(f"{len(failed)} nodes failed:")
    for _, failure in failed:
        error.add_note(explain(failure))
    return error
