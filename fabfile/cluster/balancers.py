"""Every haproxy in front of the nodes, kept in step: what a rollout drains through.

An HA pair (active/backup behind a floating address, or two active ones behind DNS)
sends traffic through either balancer, so a node is out of rotation only when it is
out of rotation in every one of them. Each change (drain, maint, ready, a weight, a
blue/green switch) is applied to all of them in ``lb_socket``'s order and read back from
each before the rollout moves on; a balancer that cannot be reached stops the run (at
pre-flight: before any node changes), never a silent skip. ``--lb`` leaves one out,
said in the plan.

With one balancer this is that balancer, read back the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from ..app.config import AppConfig, NodeConfig
from ..app.endpoints import Endpoint
from ..errors import NodeError
from .balancer import Admin, Balancer, Counters, State
from .runtimeapi import Channel, Local

T = TypeVar("T")

# What a server is set to, and what its state read back may be once it is: drained,
# a server failing its health checks stays DOWN; in maintenance it is MAINT.
_READ_BACK = {
    Admin.DRAIN: (State.DRAIN, State.DOWN, State.MAINT, State.NOLB),
    Admin.MAINT: (State.MAINT,),
    Admin.READY: tuple(s for s in State if s not in (State.MAINT, State.DRAIN, State.MISSING)),
}
_TAKEN_OUT = (State.MAINT, State.DRAIN)  # by an operator or a tool, not by health checks
# Of two views of one server, the one further from taking traffic wins.
_ORDER = (
    State.UNREACHABLE,
    State.MISSING,
    State.MAINT,
    State.DRAIN,
    State.DOWN,
    State.NOLB,
    State.OTHER,
    State.UP,
)


def _channel(config: AppConfig, endpoint: Endpoint) -> Channel:
    """A socket here, or on the balancer's host over SSH (which loads Paramiko and
    Fabric: only then)."""
    if not endpoint.remote:
        return Local(endpoint.socket, endpoint.name)
    from .lbhost import Remote

    return Remote(endpoint, config.balancer_hosts[endpoint.name])


def worst(states: Iterable[State]) -> State:
    """Of several views of one server, the one furthest from taking traffic."""
    return min(states, key=_ORDER.index)


class Balancers:
    """The chosen balancers of one app, as one `Rotation`."""

    def __init__(
        self,
        members: list[Balancer],
        left_out: tuple[str, ...] = (),
        chosen: tuple[Endpoint, ...] = (),
    ) -> None:
        self.members = members
        self.left_out = left_out  # names ``--lb`` did not choose
        self.chosen = chosen  # where each member is, for the plan

    @classmethod
    def of(cls, config: AppConfig, chosen: tuple[Endpoint, ...]) -> Balancers | None:
        """The balancers ``chosen`` of ``config``'s (None when .config names none)."""
        if not chosen:
            return None
        members = []
        for endpoint in chosen:
            state_file = endpoint.state_file(config.lb_state_file) if config.lb_state_file else ""
            members.append(Balancer(_channel(config, endpoint), state_file))
        left_out = tuple(e.name for e in config.balancers if e not in chosen)
        return cls(members, left_out, chosen)

    def plan_lines(self) -> list[str]:
        """What the plan says of them: each balancer and how it is reached, the ones
        ``--lb`` left out, and a warning for a TCP socket (no authentication)."""
        alone = self.chosen[0] if len(self.chosen) == 1 and not self.left_out else None
        if alone is not None and not alone.remote and not alone.tcp:
            return []  # one haproxy, on this machine: nothing to say
        line = "balancers: " + ", ".join(e.describe for e in self.chosen)
        if self.left_out:
            line += f"; left out by --lb: {', '.join(self.left_out)} (not changed by this run)"
        lines = [line]
        for endpoint in (e for e in self.chosen if e.tcp):
            lines.append(
                f"warning: {endpoint.name} is haproxy's TCP stats socket, which asks nothing "
                "of a client: anyone who reaches it can take every server out of rotation. "
                "Name the socket on its host instead (HOST:/path, over SSH)"
            )
        return lines

    @property
    def names(self) -> list[str]:
        return [member.name for member in self.members]

    def _each(self, work: Callable[[Balancer], T], change: str = "") -> list[T]:
        """``work`` on every balancer in turn; an error names the balancer it came from
        and says how to leave it out, and which balancers ``change`` was made in already
        (they now disagree with the rest)."""
        done = []
        for member in self.members:
            try:
                done.append(work(member))
            except NodeError as error:
                named = self._named(member, error)
                made = self.names[: len(done)]
                if change and made:
                    named.add_note(
                        f"{change} was made in {', '.join(made)} already and not in "
                        f"{member.name}: `deploy status` shows each one's view"
                    )
                raise named from None
        return done

    def _named(self, member: Balancer, error: NodeError) -> NodeError:
        if len(self.members) == 1 and not self.left_out:
            return error
        others = ",".join(name for name in self.names if name != member.name)
        said = str(error)
        for named in (f"balancer {member.name}: ", f"{member.name}: "):
            said = said.removeprefix(named)
        way = f"leave it out with --lb {others}" if others else "name others with --lb"
        return NodeError(
            f"balancer {member.name}: {said}; every balancer in lb_socket is kept in "
            f"step: bring it back, or {way}"
        )

    # -- what the rollout asks (`Rotation`) ------------------------------------

    def mismatches(self, nodes: tuple[NodeConfig, ...]) -> list[str]:
        """Every balancer's own mismatches, then the nodes they disagree on."""
        problems = []
        for member, found in zip(
            self.members, self._each(lambda b: b.mismatches(nodes)), strict=True
        ):
            prefix = f"balancer {member.name}: " if len(self.members) > 1 else ""
            problems += [prefix + problem for problem in found]
        return problems + self.disagreements(nodes)

    def disagreements(self, nodes: tuple[NodeConfig, ...]) -> list[str]:
        """The nodes one balancer has taken out of rotation (MAINT, DRAIN: someone set
        it) and another has not, in words. Health (UP or DOWN) is each balancer's own
        view of the node, and may differ for a moment after a restart."""
        if len(self.members) < 2:
            return []
        views = self.views(nodes)
        problems = []
        for node in nodes:
            seen = {name: view[node.label] for name, view in views.items()}
            if len({state in _TAKEN_OUT for state in seen.values()}) > 1:
                said = ", ".join(f"{name} {state}" for name, state in seen.items())
                problems.append(
                    f"{node.label}: the balancers disagree ({said}); make them agree "
                    "(set the server's state in each haproxy) or leave one out with --lb"
                )
        return problems

    def views(self, nodes: tuple[NodeConfig, ...]) -> dict[str, dict[str, State]]:
        """Each balancer's states of the nodes, by balancer name."""
        return dict(zip(self.names, self._each(lambda b: b.states(nodes)), strict=True))

    def states(self, nodes: tuple[NodeConfig, ...]) -> dict[str, State]:
        """Each node's state: the one furthest from serving of the balancers' views."""
        views = list(self.views(nodes).values())
        return {node.label: worst(view[node.label] for view in views) for node in nodes}

    def counters(self, nodes: tuple[NodeConfig, ...]) -> dict[str, Counters]:
        """Each node's requests and errors through every balancer, added up."""
        totals = {node.label: Counters() for node in nodes}
        for found in self._each(lambda b: b.counters(nodes)):
            for label, counters in found.items():
                sums = totals[label]
                requests = sums.requests + counters.requests
                weighted = sums.rtime * sums.requests + counters.rtime * counters.requests
                totals[label] = Counters(
                    requests,
                    sums.errors + counters.errors,
                    round(weighted / requests) if requests else 0,
                )
        return totals

    def set_state(self, node: NodeConfig, state: Admin) -> None:
        """``state`` in every balancer, then read back from each."""
        self._each(lambda b: b.set_state(node, state), f"{node.label}: state {state}")
        self._read_back(node, state)

    def _read_back(self, node: NodeConfig, state: Admin) -> None:
        wanted = _READ_BACK[state]
        for name, view in self.views((node,)).items():
            if view[node.label] not in wanted:
                raise NodeError(
                    f"balancer {name}: {node.label} is {view[node.label]} after "
                    f"'state {state}'; another operator or tool may be changing it"
                )

    def drain(self, node: NodeConfig) -> float:
        """Drained in every balancer, then waited on in each until its sessions end."""
        self.set_state(node, Admin.DRAIN)
        return self.idle(node)

    def idle(self, node: NodeConfig) -> float:
        """Until the node's sessions ended in every balancer; the seconds it took (those
        of one end while the first is waited on: the wait is not a sum)."""
        started = time.monotonic()
        self._each(lambda b: b.idle(node))
        return time.monotonic() - started

    def ready(self, node: NodeConfig, weight: int = 100) -> int:
        """Back in rotation in every balancer, at the same weight in each."""
        got = self._each(lambda b: b.ready(node, weight), f"{node.label}: ready")
        self._read_back(node, Admin.READY)
        if len(set(got)) > 1:  # one could split the weight and another not
            self.set_weight(node, 100)
            return 100
        return got[0]

    def set_weight(self, node: NodeConfig, percent: int) -> None:
        self._each(lambda b: b.set_weight(node, percent), f"{node.label}: weight {percent}%")

    def wait_up(self, node: NodeConfig) -> State:
        """Wait until every balancer reports the node UP; the worst state seen last."""
        return worst(self._each(lambda b: b.wait_up(node)))
