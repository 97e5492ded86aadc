"""The deploy strategies, by the name ``.config`` gives them (``strategy = ...``).

The registry names every strategy the tool knows; each strategy's module declares
all that is its own (`contract.Strategy`). A fourth strategy is one module here and
one line in `MODULES`. A strategy's module is imported when it is first asked for:
it brings the rollout's machinery (batches, runtimes, targets), which the status
table and ``--help`` do not use (tests/unit/test_startup.py). Everything else asks
through this module: which strategy an app has (`kind`), whether its ``.config``
suits it (`validate`, `load`), and the strategy for a run (`build`); none of it
compares a strategy's name.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING

from ...app import config as config_file
from ...app.config import DEPLOY, AppConfig
from ...errors import ConfigError, UsageError

if TYPE_CHECKING:  # the strategies' modules are imported on first use (`_Registry`)
    from .contract import Setup, Strategy

# each strategy's name, as ``.config`` gives it, and the module (here) and class declaring it
MODULES = {
    "rolling": ("rolling", "Rolling"),
    "blue-green": ("bluegreen", "BlueGreen"),
    "parallel": ("parallel", "Parallel"),
}


class _Registry(MutableMapping[str, "type[Strategy]"]):
    """Every strategy by name, as a mapping; a strategy's module is imported the first
    time it is looked up. A test may register one more (``monkeypatch.setitem``)."""

    def __init__(self, modules: dict[str, tuple[str, str]]) -> None:
        self._modules = {
            name: (f"{__name__}.{module}", cls) for name, (module, cls) in modules.items()
        }
        self._loaded: dict[str, type[Strategy]] = {}

    def __getitem__(self, name: str) -> type[Strategy]:
        if name not in self._loaded:
            module, cls = self._modules[name]  # KeyError: not a strategy
            found: type[Strategy] = getattr(importlib.import_module(module), cls)
            self._loaded[name] = found
        return self._loaded[name]

    def __setitem__(self, name: str, kind: type[Strategy]) -> None:
        self._modules.setdefault(name, (kind.__module__, kind.__qualname__))
        self._loaded[name] = kind

    def __delitem__(self, name: str) -> None:
        del self._modules[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)


REGISTRY = _Registry(MODULES)


def kind(config: AppConfig) -> type[Strategy]:
    """The strategy ``config`` names; `ConfigError` (file, line, key) for one the
    registry does not know."""
    found = REGISTRY.get(config.strategy)
    if found is None:
        written = (config.source.text(DEPLOY, "strategy") or config.strategy).strip()[:60]
        raise ConfigError(
            f"{config.where(DEPLOY, 'strategy')} = {written!r}: unknown strategy; "
            f"known: {', '.join(REGISTRY)}"
        )
    return found


def validate(config: AppConfig) -> None:
    """Whether ``config`` suits the strategy it names: a known name, what that strategy
    requires (`Strategy.validate`), and a canary that leaves some of what the strategy
    counts (`Strategy.unit`) to wait for its verdict. `ConfigError` naming file, line and key.

    It is `fabfile.app.config.load`'s ``rules`` (`load`); called on a config loaded
    without them, a file with two mistakes may name the other one first."""
    chosen = kind(config)
    chosen.validate(config)
    units = chosen.unit.of(config.nodes)
    canary = config.pace.canary
    if canary >= units:
        raise ConfigError(
            f"{config.where(DEPLOY, 'canary')} = {canary}: the cluster has {units} "
            f"{chosen.unit}, and a canary must leave some to wait for its verdict; set canary "
            f"below {units}"
        )


def load(path: Path, app: str | None = None) -> AppConfig:
    """Read ``path`` and check it, the strategy's requirements included (`validate`)."""
    return config_file.load(path, app, rules=validate)


def build(name: str, setup: Setup) -> Strategy:
    """The strategy ``name`` (one `validate` accepted), with what ``setup`` gives it."""
    return REGISTRY[name](setup)


def require(config: AppConfig, command: str, what: str) -> None:
    """`UsageError` unless ``config``'s strategy has ``command`` (`Strategy.commands`):
    ``what`` (e.g. "deploy switch", "--no-switch") is for the apps of those that do."""
    if command in kind(config).commands:
        return
    having = " or ".join(found.title for found in REGISTRY.values() if command in found.commands)
    raise UsageError(f"{what} is for {having} apps; {config.path} has strategy = {config.strategy}")
