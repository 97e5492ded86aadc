"""A blue/green host's colours as haproxy holds them, read again before each act.

A run reads haproxy once to choose each host's new colour (`pair_of`); haproxy may
change under it (restarted without its server-state file, reloaded, switched by
hand), so before a colour is restarted or switched the host's states are read
again (`Pair.reread`). A colour that has come into rotation since is never
restarted: `Changed` stops the run saying what changed. Whether the new colour
carries the live one's sessions is read the same way, right before the switch.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from ...cluster.balancer import Rotation, State
from ...cluster.manager import Sessions
from ...errors import NodeError, RolloutError
from ..steps import Steps
from ..target import Target

REPLICATION_WAIT = 3.0  # seconds for a new session on the live colour to reach the idle one


class Changed(RolloutError):
    """haproxy's state of a host changed during the run so that acting on the picture
    read at its start would hurt users (a colour to restart now takes traffic)."""


@dataclasses.dataclass
class Pair:
    """One host's colours: ``new`` serves after the run, ``old`` is the other one.

    ``states`` is haproxy's state of each colour as last read (by label)."""

    new: Target
    old: list[Target]
    states: dict[str, State]

    @property
    def colours(self) -> list[Target]:
        return [self.new, *self.old]

    @property
    def live(self) -> set[str]:
        """The labels of the colours in rotation (not in maintenance)."""
        return {label for label, state in self.states.items() if state != State.MAINT}

    @property
    def serving_labels(self) -> set[str]:
        """... and of those that take traffic (their users have sessions)."""
        return {label for label, state in self.states.items() if state.serving}

    @property
    def serving(self) -> bool:
        """Only ``new`` takes traffic: nothing to switch on this host."""
        return self.live == {self.new.host}

    @property
    def was_live(self) -> list[Target]:
        return [target for target in self.old if target.host in self.live]

    @property
    def was_serving(self) -> list[Target]:
        return [target for target in self.old if target.host in self.serving_labels]

    def reread(self, rotation: Rotation) -> list[str]:
        """Read haproxy's state of the host's colours again; what changed since the last
        read, in words (a server going DOWN or UP on its own health checks included)."""
        host = self.new.node.host
        try:
            now = rotation.states(tuple(target.config for target in self.colours))
        except NodeError as error:
            raise NodeError(
                f"{host}: haproxy's state of its colours could not be read again ({error}); "
                "nothing was changed on this host"
            ) from None
        changes = [
            f"{label} was {was}, now {now[label]}"
            for label, was in self.states.items()
            if now.get(label, was) != was
        ]
        self.states = {label: now.get(label, was) for label, was in self.states.items()}
        return changes

    def came_live(self, changes: Sequence[str]) -> Changed:
        """The new colour came into rotation during the run: it is not restarted."""
        host, new = self.new.node.host, self.new.host
        return Changed(
            f"{host}: haproxy's state changed during the run ({'; '.join(changes)}): {new} "
            f"is in rotation now, so it was not restarted. haproxy may have restarted or "
            "reloaded without its server-state file (lb_state_file), or someone switched "
            "it by hand. Run `deploy` to see which colour serves what; then run the same "
            "command again: it reads which colour is live afresh and deploys to the idle one"
        )


def pair_of(steps: Steps, colours: list[Target], states: dict[str, State]) -> Pair:
    """Which colour serves after the run: one that runs the release already (live
    first), else the idle one (the last, when both take traffic)."""
    live = [target for target in colours if states.get(target.host) != State.MAINT]
    idle = [target for target in colours if states.get(target.host) == State.MAINT]
    ready = [target for target in live + idle if steps.unchanged(target)]
    # both in rotation: the one that is not UP, so the other keeps serving meanwhile
    down_first = sorted(colours, key=lambda target: _serving(states, target.host))
    new = ready[0] if ready else (idle[0] if idle else down_first[0])
    old = [target for target in colours if target is not new]
    known = {target.host: states.get(target.host, State.MISSING) for target in colours}
    return Pair(new, old, known)


def replicated(sessions: Sessions, pair: Pair) -> str:
    """'' when the new colour carries the sessions of the live one; else what was seen,
    or why they could not be counted."""
    try:
        return lost(sessions, pair)
    except NodeError as error:
        return f"{error}; sessions cannot be checked before the switch"


def lost(sessions: Sessions, pair: Pair) -> str:
    """'' when the new colour carries the sessions of the live one (polled a moment, as
    a session just opened takes that long to replicate); else what was seen. `NodeError`
    when a manager does not answer."""
    live = pair.was_serving
    if not live:
        return ""
    deadline = time.monotonic() + REPLICATION_WAIT
    while True:
        expected, found = sessions.count(live[0].config), sessions.count(pair.new.config)
        if found >= expected or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    if found >= expected:
        return ""
    return (
        f"{pair.new.host} carries {found} of the {expected} session(s) of {live[0].host} "
        f"(Tomcat manager): it has not joined {live[0].host}'s cluster, and switching to it "
        f"would log {expected - found} user(s) out"
    )


def names(targets: Sequence[Target]) -> str:
    return ", ".join(target.host for target in targets) or "no colour"


def _serving(states: dict[str, State], label: str) -> bool:
    """Whether haproxy sends ``label`` traffic (a server it lacks does not serve)."""
    state = states.get(label)
    return state is not None and state.serving
