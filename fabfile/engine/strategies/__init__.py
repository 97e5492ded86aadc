"""The deploy strategies, by the name ``.config`` gives them (``strategy = ...``).

The registry names every strategy the tool knows. This module imports nothing
of the tool, so `fabfile.app.config` can check a name without a cycle; a
strategy's own module is imported only when it is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .contract import Setup, Strategy

# name -> "module:class"
REGISTRY: dict[str, str] = {
    "rolling": "fabfile.engine.strategies.rolling:Rolling",
    "blue-green": "fabfile.engine.strategies.bluegreen:BlueGreen",
    "parallel": "fabfile.engine.strategies.parallel:Parallel",
}
DEFAULT = "rolling"


def build(name: str, setup: Setup) -> Strategy:
    """The strategy ``name`` (checked by `fabfile.app.config`), with what ``setup`` gives it."""
    module, _, attribute = REGISTRY[name].partition(":")
    kind = getattr(importlib.import_module(module), attribute)
    strategy: Strategy = kind(setup)
    return strategy
