"""Strategies: the order in which staged nodes are switched to the new release.

A strategy only orders the per-node steps that `fabfile.rollout.Rollout`
offers; pre-flight, staging, history and the lock are the rollout's. New
strategies (blue/green behind haproxy, Tomcat parallel deployment) plug in
here without touching them.
"""

from __future__ import annotations

from .balancer import Balancer
from .errors import DeployError
from .phase import Phase
from .rollout import Rollout, Target


class Rolling:
    """One node at a time: out of rotation, install, restart, verify, back, warm up."""

    name = "rolling"

    def __init__(self, balancer: Balancer | None = None) -> None:
        self.balancer = balancer

    def run(self, rollout: Rollout) -> None:
        targets = rollout.targets
        for index, target in enumerate(targets):
            if rollout.unchanged(target):
                target.outcome = "unchanged"
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
        if balancer is not None:
            rollout.set_phase(target, Phase.DRAINING)
            balancer.drain(target.config)
        try:
            rollout.install_and_restart(target)
        except DeployError as error:
            if balancer is None:
                raise
            balancer.maint(target.config)
            node = target.config
            raise type(error)(
                f"{error}\n{target.host} is left in maintenance in haproxy "
                f"({node.lb_backend}/{node.lb_server}): it takes no traffic until a deploy "
                "or rollback verifies it."
            ) from None
        if balancer is not None:
            balancer.ready(target.config)


def _more_to_restart(rollout: Rollout, rest: list[Target]) -> bool:
    """Warm-up protects the next node's peers; after the last restart it protects no one."""
    return any(not rollout.unchanged(target) for target in rest)
