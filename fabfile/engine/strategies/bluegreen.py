"""Blue/green: every host runs two instances; the idle one gets the release, the switch
sends the traffic to it.

The order is the safety argument. The idle colour of *every* host is made live
and verified by version on its own port while the live colours serve (all of them at
once, or ``idle_starts`` at a time: an idle colour takes no traffic and competes only
with its own host's live colour, so a deploy of N hosts costs about one start); then
one warm-up; only then does haproxy switch, ``batch`` hosts together: on each, the new
colour ``ready`` and reported UP, then the old one ``maint`` (the other order fails
requests: a server leaving maintenance is not UP at once). A failure before the switch changes
nothing users see. The old colour keeps its release, so a rollback is a
switch back: no restart, no bytes.

Which colour is live is read from haproxy, never from a file of ours, and read
again right before a colour is restarted or switched (`colours`): a colour that
has come into rotation since the run began (haproxy restarted without its state
file, or switched by hand) is never restarted; the run stops and says what
changed. A host whose colours are both in rotation (a switch cut short) or where
a colour already runs the release is finished rather than redone, so running the
same command again completes an interrupted run; an idle colour that runs the
release but does not carry the live colour's sessions is restarted, so that it
joins the live one's cluster (the advice a refused switch gives).
"""

from __future__ import annotations

import dataclasses
import functools
import urllib.parse
from collections.abc import Sequence
from typing import ClassVar

from ...app.config import DEPLOY, INSTANCE_PREFIX, AppConfig, NodeConfig
from ...cluster.balancer import Admin, Counters, Rotation, State
from ...cluster.manager import Sessions
from ...errors import ConfigError, DeployError, NodeError, PreflightError, RolloutError
from .. import canary, fanout
from ..batches import Batches
from ..phase import Phase
from ..plan import Plan
from ..runtimes import Runtime
from ..runtimes.restart import Restart
from ..steps import Steps
from ..target import Outcome, Target
from .bluegreen_pace import order
from .colours import Changed, Pair, lost, names, pair_of, replicated
from .contract import Columns, Preview, Rollback, Setup, Unit


class BlueGreen:
    """Make the idle colours live (at once), verify them all, then switch haproxy."""

    name: ClassVar[str] = "blue-green"
    title: ClassVar[str] = "blue/green"
    rollback: ClassVar[Rollback] = Rollback.SWITCH_BACK
    unit: ClassVar[Unit] = Unit.HOSTS
    restarts: ClassVar[bool] = True
    prepares: ClassVar[bool] = False
    versioned: ClassVar[bool] = False
    preview: ClassVar[Preview] = Preview(
        "install + restart (idle colour), then the switch to it",
        kept="live colour: not touched; the switch takes its traffic away",
        order=order,
        unchanged="idle colour runs it already (verified on /status): no restart, the switch to it",
        switch="switch {host}: haproxy sets {new} ready, waits until it is UP, then sets "
        "{old} maint (its traffic moves from {old} to {new})",
    )
    status: ClassVar[Columns] = Columns.COLOURS
    # sends the traffic to the other colour, whatever release it runs (run again: back)
    commands: ClassVar[tuple[str, ...]] = ("switch",)

    def __init__(self, setup: Setup) -> None:
        if setup.rotation is None:  # `validate` refuses blue-green without lb_socket
            raise ValueError("blue-green needs a load balancer")
        self.rotation: Rotation = setup.rotation
        self.setup = setup
        self.rejoin: set[int] = set()  # the pairs whose idle colour restarts to join

    # -- .config ----------------------------------------------------------------

    @classmethod
    def validate(cls, config: AppConfig) -> None:
        """Two colours per host, each on its own port, switched through haproxy."""
        nodes = config.nodes
        colours = tuple(dict.fromkeys(node.instance for node in nodes if node.instance))
        if len(colours) != 2:
            raise ConfigError(
                f"{config.where(DEPLOY, 'instances')}: blue-green runs two instances on every "
                f"host, {len(colours)} are named; set instances = blue, green"
            )
        if not nodes[0].lb_socket:
            raise ConfigError(
                f"{config.where(DEPLOY, 'strategy')} = blue-green switches traffic in haproxy: "
                "set lb_socket and lb_backend in [deploy]"
            )
        for colour in colours:
            _own_status_url(config, colour)
        by_port: dict[tuple[str, int | None], NodeConfig] = {}
        for node in nodes:
            parts = urllib.parse.urlsplit(node.url)
            other = by_port.setdefault((parts.hostname or "", parts.port), node)
            if other is not node:
                section = config.source.section(INSTANCE_PREFIX, node.instance)
                raise ConfigError(
                    f"{config.where(section, 'status_url')}: {other.label} and {node.label} "
                    f"both answer on port {parts.port or 'the default'}; give each colour "
                    "its own port"
                )

    # -- pre-flight ---------------------------------------------------------

    def check(self, nodes: tuple[NodeConfig, ...]) -> list[str]:
        """Every colour's haproxy server exists and points at it; the live colours'
        sessions can be counted (when a manager user is configured)."""
        try:
            problems = self.rotation.mismatches(nodes)
            states = self.rotation.states(nodes)
        except NodeError as error:
            return [f"{error}; without it no colour can be switched"]
        sessions = self.setup.sessions
        if sessions is not None:  # a colour that is down has no users left to lose
            live = [node for node in nodes if states[node.label].serving]
            counted = fanout.each(functools.partial(_countable, sessions), live)  # at once
            problems += [p for p in counted if p]
        return problems

    def kept(self, nodes: tuple[NodeConfig, ...]) -> frozenset[str]:
        """The live colours: a run makes the idle ones live, then switches away from these."""
        try:
            states = self.rotation.states(nodes)
        except NodeError as error:
            raise PreflightError(
                f"{error}; the dry run needs it to tell the idle colours"
            ) from None
        return frozenset(label for label, state in states.items() if state.serving)

    # -- the run --------------------------------------------------------------

    def runtime(self, plan: Plan, steps: Steps, run_id: str, holder: str) -> Runtime:
        return Restart(plan, steps, run_id, holder)

    def run(self, steps: Steps) -> None:
        """Idle colours made live ``idle_starts`` hosts at a time (all at once by
        default); canary hosts are switched and judged before the others; the rest is
        warmed up once and switched, ``batch`` hosts together, once all are verified. A
        host whose idle colour failed (within ``max_failures``) keeps its live colour."""
        pairs = self._pairs(steps)
        by_new = {id(pair.new): pair for pair in pairs}
        switched: list[Pair] = []
        self.rejoin = set()
        skipped = fanout.each(functools.partial(self._skipped, steps), pairs)  # counts at once
        todo = [pair.new for pair, skip in zip(pairs, skipped, strict=True) if not skip]

        def after(verified: Sequence[Target], more: bool, canary: bool) -> None:
            if canary and more and self.setup.switch:  # switched first, then judged
                ready = [by_new[id(target)] for target in verified]
                steps.warm_up(verified)
                self._check_sessions(steps, ready)
                self._switches(steps, ready, len(pairs), switched)

        def switch_back(target: Target) -> None:
            self._switch_back(steps, by_new[id(target)])

        starts = dataclasses.replace(steps.pace, batch=steps.pace.idle_starts)
        runner = Batches(
            steps, self.rotation, units=len(pairs), on_failed_canary=switch_back, pace=starts
        )
        try:
            runner.run(todo, lambda target: self._make(steps, by_new[id(target)]), after)
            rest = [p for p in pairs if p not in switched and p.new.outcome != Outcome.FAILED]
            made = [pair.new for pair in rest if any(pair.new is t for t in todo)]
            if made:
                steps.warm_up(made)
            for pair in (pair for pair in rest if not pair.serving):
                pair.new.end(Outcome.VERIFIED)
                steps.set_phase(pair.new, Phase.DONE, "verified, not live")
            if self.setup.switch:
                self._check_sessions(steps, [pair for pair in rest if not pair.serving])
                self._switches(steps, rest, len(pairs), switched, runner)
        except (DeployError, KeyboardInterrupt) as error:
            changed = isinstance(error, Changed) or any(
                isinstance(e, Changed) for _, e in runner.failed
            )
            error.add_note(_unswitched(pairs, switched, changed))
            raise
        if self.setup.switch:
            runner.watch([pair.new for pair in pairs if pair.new.outcome == Outcome.LIVE])
        runner.finish()

    def _switches(
        self,
        steps: Steps,
        pairs: Sequence[Pair],
        hosts: int,
        switched: list[Pair],
        runner: Batches | None = None,
    ) -> None:
        """Switch ``batch`` hosts together (of ``hosts``), each in the safe order; a host
        alone in the caller's thread, as before, so Ctrl-C stops it where it is. Each
        host switched is added to ``switched`` (also when another one fails). With
        ``runner``, the hosts switched so far are judged before each next switch batch
        (`_judge`)."""
        size = steps.pace.size(hosts)
        if pairs:  # the pre_switch hook may stop it here
            steps.switching([pair.new.host for pair in pairs])

        def one(pair: Pair) -> None:
            self._switch(steps, pair)
            switched.append(pair)

        groups = [pairs[start : start + size] for start in range(0, len(pairs), size)]
        judging = runner is not None and steps.pace.judged and len(groups) > 1
        window: dict[str, Counters] | None = None
        for number, group in enumerate(groups, start=1):
            if runner is not None and window is not None:
                self._judge(runner, number - 1, len(groups), switched, window)
            if judging and number < len(groups):  # the last has the watch window
                window = canary.counters(self.rotation, tuple(t.config for t in steps.targets))
            if len(groups) > 1:
                steps.note(f"switch {number}/{len(groups)}: {names([p.new for p in group])}")
            if len(group) == 1:
                one(group[0])
            else:
                fanout.each(one, group)

    def _judge(
        self,
        runner: Batches,
        number: int,
        groups: int,
        switched: Sequence[Pair],
        window: dict[str, Counters],
    ) -> None:
        """Judge the new colours switched so far over the window from switch batch
        ``number``'s start to now, right before the next one: no time is added, so the
        window is as long as that switch took (with too few requests it is
        Inconclusive and the run goes on). A Failed verdict does what on_failure
        says; stop switches them back (`_switch_back`, through the runner)."""
        live = [pair.new for pair in switched if pair.new.outcome == Outcome.LIVE]
        if live:
            runner.judge_window(number, f"switch {number}/{groups}", live, window)

    def _pairs(self, steps: Steps) -> list[Pair]:
        targets = steps.targets
        states = self.rotation.states(tuple(target.config for target in targets))
        by_host: dict[str, list[Target]] = {}
        for target in targets:
            by_host.setdefault(target.node.host, []).append(target)
        return [pair_of(steps, colours, states) for colours in by_host.values()]

    def _skipped(self, steps: Steps, pair: Pair) -> bool:
        """The host's new colour runs the release already: nothing to make live, unless
        it is idle and does not carry the live colour's sessions (it is restarted, and
        so joins the live colour's cluster: a refused switch's advice, followed)."""
        new = pair.new
        if not steps.unchanged(new):
            return False
        unjoined = self._unjoined(pair)
        if unjoined:
            steps.note(f"{unjoined}; restarting {new.host} so that it joins (it is idle)")
            self.rejoin.add(id(pair))
            return False
        steps.set_phase(new, Phase.SKIPPED, new.status.describe() if new.status else "")
        return True

    def _unjoined(self, pair: Pair) -> str:
        """Why the host's idle new colour would log users out at the switch ('' when it
        would not, or when the switch checks no sessions)."""
        sessions = self.setup.sessions
        checked = self.setup.switch and not self.setup.force  # --force: switch anyway
        checked = checked and self.setup.distributable is not False
        if sessions is None or not checked or pair.new.host in pair.live:
            return ""
        try:
            return lost(sessions, pair)
        except NodeError:  # the check before the switch says so, and stops there
            return ""

    def _make(self, steps: Steps, pair: Pair) -> None:
        """Bring the release to the host's new colour, once haproxy, read again, says it
        takes no traffic the run did not know of (`Changed` if it does)."""
        new = pair.new
        expected = new.host in pair.live  # both colours took traffic when the run began
        changes = pair.reread(self.rotation)
        if not expected and new.host in pair.live:
            error = pair.came_live(changes)
            steps.set_phase(new, Phase.FAILED, str(error))
            raise error
        if self.setup.rollback and id(pair) not in self.rejoin:
            steps.note(
                f"{new.node.host}: no colour runs that release any more; deploying it to "
                f"{new.host} the normal way"
            )
        if new.host in pair.live:  # take this one out first; the other keeps serving
            steps.set_phase(new, Phase.DRAINING)
            self.rotation.drain(new.config)
            self.rotation.set_state(new.config, Admin.MAINT)
            pair.states[new.host] = State.MAINT
        steps.make_live(new)

    def _check_sessions(self, steps: Steps, pairs: Sequence[Pair]) -> None:
        """Before the switch: will the users of each live colour still be logged in?"""
        if not pairs:
            return
        if self.setup.distributable is False:
            steps.note(
                "users will be logged out by the switch: the WAR's WEB-INF/web.xml has no "
                "<distributable/>, so Tomcat does not replicate its sessions"
            )
            return
        sessions = self.setup.sessions
        if sessions is None:
            steps.note(
                "sessions not checked (no manager_user in .config): a colour that has not "
                "joined the live one's cluster would log its users out at the switch"
            )
            return
        for pair in pairs:  # the users to keep are those of the colours live now
            pair.reread(self.rotation)
        counted = fanout.each(functools.partial(replicated, sessions), pairs)  # hosts at once
        problems = [p for p in counted if p]
        if problems and not self.setup.force:
            raise RolloutError(
                "\n".join(problems) + "\nCheck the <Cluster> of both colours' server.xml, then "
                "run the same command again: it restarts an idle colour that does not carry "
                "the live one's sessions, so that it joins (no restart of it helps when the "
                "live colour's own <Cluster> is wrong). A deploy with --force switches anyway "
                "(those users log in again)"
            )
        for problem in problems:
            steps.note(f"{problem}; switching anyway (--force)")

    def _switch_back(self, steps: Steps, pair: Pair) -> None:
        """A host whose new colour was judged Failed (a canary, or on_failure = stop after
        a switch batch): its old colour back in (and UP), then the new one out, as a
        switch does the other way."""
        for old in pair.was_live:
            self.rotation.ready(old.config)
            self.rotation.wait_up(old.config)
            old.end(Outcome.LIVE, "switched back: its new colour was judged Failed")
            steps.set_phase(old, Phase.DONE, "live again")
        self.rotation.set_state(pair.new.config, Admin.MAINT)

    def _switch(self, steps: Steps, pair: Pair) -> None:
        """New colour ready and reported UP, then the old one out: never a moment without.
        haproxy is read again first: the colours taken out are those in rotation now."""
        new = pair.new
        changes = pair.reread(self.rotation)
        if changes:
            steps.note(
                f"{new.node.host}: haproxy's state changed during the run "
                f"({'; '.join(changes)}); switching from what haproxy holds now"
            )
        if pair.serving:
            self._served_already(steps, pair)
            return
        steps.set_phase(new, Phase.SWITCHING)
        try:
            self.rotation.ready(new.config)
            state = self.rotation.wait_up(new.config)
            if state != State.UP:
                self.rotation.set_state(new.config, Admin.MAINT)
                raise NodeError(
                    f"{new.host}: haproxy reports it {state}, not UP, after it was set ready; "
                    f"it was taken out again and {names(pair.was_live)} still serve(s)"
                )
            for old in pair.was_live:
                self.rotation.set_state(old.config, Admin.MAINT)
        except NodeError as error:
            new.end(Outcome.FAILED, str(error))
            steps.set_phase(new, Phase.FAILED, str(error))
            raise RolloutError(str(error)) from None
        new.end(Outcome.LIVE)
        steps.set_phase(new, Phase.DONE, "live")
        self._standby(steps, pair)

    def _served_already(self, steps: Steps, pair: Pair) -> None:
        """Only the new colour is in rotation: nothing to switch on this host."""
        new = pair.new
        if new.outcome == Outcome.UNTOUCHED:
            new.end(Outcome.UNCHANGED)
        elif new.outcome == Outcome.VERIFIED:  # made by this run; haproxy sends it traffic
            new.end(Outcome.LIVE, "in rotation already: haproxy's state changed during the run")
            steps.set_phase(new, Phase.DONE, "live")
            self._standby(steps, pair)

    def _standby(self, steps: Steps, pair: Pair) -> None:
        for old in pair.old:
            old.end(Outcome.STANDBY, "out of rotation, keeps its release for a switch back")
            steps.set_phase(old, Phase.DONE, "standby")


def _own_status_url(config: AppConfig, colour: str) -> None:
    """A colour's status_url is set in its own section, or [deploy]'s names {instance}."""
    section = config.source.section(INSTANCE_PREFIX, colour)
    shared = config.source.text(DEPLOY, "status_url") or ""
    if config.source.text(section, "status_url") is not None or "{instance}" in shared:
        return
    line = (
        config.source.line(section)
        if config.source.has(section)
        else config.source.line(DEPLOY, "instances")
    )
    raise ConfigError(
        f"{config.path}:{line}: [{section}] has no status_url: colour {colour} needs a port "
        f"of its own; add [{section}] status_url = http://{{host}}:PORT/status"
    )


def _countable(sessions: Sessions, node: NodeConfig) -> str:
    try:
        sessions.count(node)
    except NodeError as error:
        return f"{error}; sessions cannot be checked before the switch"
    return ""


def _unswitched(pairs: Sequence[Pair], switched: Sequence[Pair] = (), changed: bool = False) -> str:
    if switched:
        return _where(pairs, switched)
    live = [target for pair in pairs for target in pair.colours if target.host in pair.live]
    if changed:  # what haproxy was found doing, not what this run did
        return (
            "This run switched nothing and restarted no colour in rotation; haproxy's state "
            f"changed under it (in rotation when last read: {names(live)})."
        )
    return (
        "Nothing users see changed: haproxy was not switched and still sends every request "
        f"to {names(live)}."
    )


def _where(pairs: Sequence[Pair], switched: Sequence[Pair]) -> str:
    """Which colour takes each host's traffic once some hosts were switched: the new
    one, the old one again (switched back), or the old one still (never switched)."""
    on_new = [pair.new for pair in switched if pair.new.outcome == Outcome.LIVE]
    back = [old for pair in switched if pair.new.outcome != Outcome.LIVE for old in pair.was_live]
    rest = [p for p in pairs if not any(p is s for s in switched)]
    kept = [target for pair in rest for target in pair.colours if target.host in pair.live]
    words = []
    if on_new:
        words.append(f"Switched already: {names(on_new)} serve(s) the release")
    if back:
        words.append(f"switched back to their old colour: {names(back)}")
    if kept:
        words.append(f"haproxy was not switched on the other hosts: {names(kept)} serve(s)")
    text = "; ".join(words)
    return f"{text[:1].upper()}{text[1:]}."
