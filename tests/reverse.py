"""A fourth strategy that exists only in the tests: one node at a time, last node first.

It stands for the promise of `fabfile.engine.strategies`: a strategy is one module
and one line in the registry (`register`), and then ``.config`` accepts its name,
the contract suite (tests/unit/test_contract.py) runs it as it runs the others, and
the dry run words it as it says.
"""

from __future__ import annotations

from typing import ClassVar

import pytest

from fabfile.app.config import DEPLOY, AppConfig, NodeConfig
from fabfile.cluster.balancer import Admin
from fabfile.engine import strategies
from fabfile.engine.batches import order
from fabfile.engine.phase import Phase
from fabfile.engine.plan import Plan
from fabfile.engine.runtimes import Runtime
from fabfile.engine.runtimes.restart import Restart
from fabfile.engine.steps import Steps
from fabfile.engine.strategies.contract import (
    Columns,
    Preview,
    Rollback,
    Setup,
    Strategy,
    Unit,
)
from fabfile.engine.target import Outcome
from fabfile.errors import ConfigError, DeployError


class Reverse:
    """Out of rotation, made live, back in: one node at a time, the last node of
    ``.config`` first (a node that answers no /status goes before any)."""

    name: ClassVar[str] = "reverse"
    title: ClassVar[str] = "reverse"
    rollback: ClassVar[Rollback] = Rollback.REDEPLOY
    unit: ClassVar[Unit] = Unit.NODES
    restarts: ClassVar[bool] = True
    prepares: ClassVar[bool] = False
    versioned: ClassVar[bool] = False
    preview: ClassVar[Preview] = Preview("install + restart, last node first")
    status: ClassVar[Columns] = Columns.ROTATION
    commands: ClassVar[tuple[str, ...]] = ()

    def __init__(self, setup: Setup) -> None:
        if setup.rotation is None:
            raise ValueError("reverse needs a load balancer")
        self.rotation = setup.rotation

    @classmethod
    def validate(cls, config: AppConfig) -> None:
        if not config.nodes[0].lb_socket:
            raise ConfigError(
                f"{config.where(DEPLOY, 'strategy')} = reverse takes each node out of haproxy: "
                "set lb_socket and lb_backend in [deploy]"
            )

    def check(self, nodes: tuple[NodeConfig, ...]) -> list[str]:
        return self.rotation.mismatches(nodes)

    def kept(self, nodes: tuple[NodeConfig, ...]) -> frozenset[str]:
        return frozenset()

    def runtime(self, plan: Plan, steps: Steps, run_id: str, holder: str) -> Runtime:
        return Restart(plan, steps, run_id, holder)

    def run(self, steps: Steps) -> None:
        for target in order(list(reversed(steps.targets))):
            if steps.unchanged(target):
                target.end(Outcome.UNCHANGED)
                steps.set_phase(target, Phase.SKIPPED)
                continue
            steps.set_phase(target, Phase.DRAINING)
            self.rotation.drain(target.config)
            try:
                steps.make_live(target)
            except DeployError:
                self.rotation.set_state(
                    target.config, Admin.MAINT if target.restarted else Admin.READY
                )
                raise  # a Ctrl-C leaves it drained: it may be mid-restart
            self.rotation.ready(target.config)
            steps.set_phase(target, Phase.DONE)


def register(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one registry line, for one test."""
    kind: type[Strategy] = Reverse  # mypy holds it to everything a strategy declares
    monkeypatch.setitem(strategies.REGISTRY, Reverse.name, kind)
