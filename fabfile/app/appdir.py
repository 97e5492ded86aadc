"""The coordinator's app directory: ``.config``, the configuration files, the WARs.

It is found from the current directory, ``--app-dir DIR`` or ``--app NAME``
(under ``$DEPLOY_APPS_ROOT``, default ``./apps``), and also holds the tool's
own files (`fabfile.records`): the history, the lock and the archive of
configuration files.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

from ..errors import ConfigError, UsageError
from . import config, overrides
from .overrides import JETTYRC, LOGBACK, PROPERTIES, Overrides

CONFIG = ".config"
HISTORY = ".deploy-history.jsonl"
LOCK = ".deploy.lock"


@dataclasses.dataclass(frozen=True)
class AppDir:
    """One application's directory on the coordinator. ``rules``: what `config` checks
    beyond the file's own rules (the strategy's: `fabfile.engine.strategies.validate`)."""

    path: Path
    rules: config.Rules | None = dataclasses.field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.path.name

    @functools.cached_property
    def config(self) -> config.AppConfig:
        return config.load(self.path / CONFIG, app=self.name, rules=self.rules)

    @property
    def history_path(self) -> Path:
        return self.path / HISTORY

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK

    def overrides(self) -> Overrides:
        """config.properties, .jettyrc, logback.xml and each host's own, read and checked."""
        found = Overrides(self.path, self.config.hosts, self.config.path)
        lacking = [node.label for node in self.config.nodes if not node.logback_path]
        if found.base.logback is not None and lacking:
            raise ConfigError(
                f"{self.path / LOGBACK}: {self.config.path} has no logback_path for "
                f"{', '.join(lacking)}; set it in [deploy] to where the application reads "
                "its logback.xml on a node"
            )
        return found

    def config_files(self) -> list[Path]:
        """Every configuration file of the app directory that exists, for the archive."""
        names = (CONFIG, PROPERTIES, JETTYRC, LOGBACK)
        found = [self.path / name for name in names if (self.path / name).is_file()]
        return found + overrides.paths(self.path)


def locate(
    app_dir: str | None = None,
    app: str | None = None,
    cwd: Path | None = None,
    rules: config.Rules | None = None,
) -> AppDir:
    """The app directory the user means; raise `UsageError` when there is none.
    ``rules``: as `AppDir.rules`."""
    if app_dir and app:
        raise UsageError("give --app-dir or --app, not both")
    base = cwd or Path.cwd()
    if app:
        root = Path(os.environ.get("DEPLOY_APPS_ROOT", "apps"))
        path = (base / root / app).resolve()
    else:
        path = (base / app_dir).resolve() if app_dir else base.resolve()
    if not (path / CONFIG).is_file():
        raise UsageError(
            f"{path} is not an app directory (no {CONFIG}); "
            "cd into one or pass --app-dir DIR or --app NAME"
        )
    return AppDir(path, rules)
