"""Runtimes: how a release becomes live on one node, apart from the order of nodes.

A runtime installs a staged release on a node and brings it live, then
verifies it by version: today by restarting the container (`restart`); a
Tomcat manager deploy (parallel versions) will be another. Strategies order
these calls; they never do the steps themselves.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from ..target import Target


class Runtime(Protocol):
    """Makes the plan's release live on one target."""

    # which of config.properties, .jettyrc and logback.xml it puts at the node's
    # configured paths (config_path, jettyrc_path, logback_path): an edit made there
    # on the node is drift, which a deploy puts back
    places: ClassVar[tuple[str, ...]]

    def settle(self, target: Target) -> None:
        """Pre-flight: wait (bounded) for a change still under way on the node."""
        ...

    def make_live(self, target: Target) -> None:
        """Install, bring live, verify; `RolloutError` saying what was seen."""
        ...
