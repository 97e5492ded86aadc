"""Strategies: the order in which staged nodes are switched to the new release.

A strategy only orders the per-node steps that `fabfile.rollout.Rollout`
offers; pre-flight, staging, history and the lock are the rollout's. New
strategies (blue/green behind haproxy, Tomcat parallel deployment) plug in
here without touching them.
"""

from __future__ import annotations

from .balancer import Balancer
from .config import NodeConfig
from .errors import DeployError, NodeError
from .phase import Phase
from .rollout import Rollout, Target


class Rolling:
    """One node at a time: out of rotation, install, restart, verify, back, warm up."""

    name = "rolling"

    def __init__(self, balancer: Balancer | None = None) -> None:
        self.balancer = balancer

    def check(self, nodes: tuple[NodeConfig, ...]) -> list[str]:
        """Pre-flight: every node's haproxy server exists and sends traffic to it."""
        if self.balancer is None:
            return []
        try:
            return self.balancer.mismatches(nodes)
        except NodeError as error:
            return [f"{error}; without it no node can be drained"]

    def run(self, rollout: Rollout) -> None:
        targets = rollout.targets
        for index, target in enumerate(targets):
            if rollout.unchanged(target):
                target.outcome = "unchanged"
                if self.balancer is not None:
                    # A run cut short may have left it drained: it is verified, so back in.
                    self.balancer.ready(target.config)
                rollout.set_phase(
                    target, Phase.SKIPPED, target.status.describe() if target.status else ""
                )
                continue
            self._one(rollout, target)
            if index < len(targets) - 1 and _more_to_restart(rollout, targets[index + 1 :]):
                rollout.warm_up(target)
            rollout.set_phase(target, Phase.DONE, f"{target.restart_to_ready or 0:.1f} s to ready")

    def _one(self, rollout: Rollout, target: Target) -> None:
        balancer = self.balancer
        try:
            if balancer is not None:
                rollout.set_phase(target, Phase.DRAINING)
                waited = balancer.drain(target.config)
                if waited >= target.config.drain_timeout:
                    rollout.reporter.note(
                        f"{target.host}: sessions still open after drain_timeout "
                        f"({target.config.drain_timeout:g} s); restarting anyway"
                    )
            rollout.install_and_restart(target)
        except (DeployError, KeyboardInterrupt) as error:
            if balancer is None:
                raise
            raise _out_of_rotation(balancer, target, error) from None
        if balancer is not None:
            balancer.ready(target.config)


def _out_of_rotation(balancer: Balancer, target: Target, error: BaseException) -> BaseException:
    """After a failure: a node whose JVM was not restarted still runs its verified
    release and goes back in; one that was restarted stays out."""
    node = target.config
    interrupted = isinstance(error, KeyboardInterrupt)
    where = f"in haproxy ({node.lb_backend}/{node.lb_server})"
    until = "it takes no traffic until a deploy or rollback verifies it."
    if not target.restarted:
        state, note = "ready", ""
    elif interrupted:
        state, note = "drain", f"{target.host} is left in drain {where} mid-restart: {until}"
    else:
        state, note = "maint", f"{target.host} is left in maintenance {where}: {until}"
    try:
        if state == "ready":
            balancer.ready(node)
        else:
            balancer.set_state(node, state)
    except NodeError as lb_error:
        note = f"{target.host} could not be set to {state} {where}: {lb_error}"
    if interrupted:
        return KeyboardInterrupt(note)
    return type(error)(f"{error}\n{note}" if note else str(error))


def _more_to_restart(rollout: Rollout, rest: list[Target]) -> bool:
    """Warm-up protects the next node's peers; after the last restart it protects no one."""
    return any(not rollout.unchanged(target) for target in rest)
