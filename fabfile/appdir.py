"""The coordinator's app directory: ``.config``, ``config.properties``, ``.jettyrc``, WARs.

It is found from the current directory, ``--app-dir DIR`` or ``--app NAME``
(under ``$DEPLOY_APPS_ROOT``, default ``./apps``), and also holds the tool's
own files: the history and the lock.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import javaproperties

from . import config
from .artifact import file_sha256
from .errors import ConfigError, UsageError

CONFIG = ".config"
PROPERTIES = "config.properties"
JETTYRC = ".jettyrc"
HISTORY = ".deploy-history.jsonl"
LOCK = ".deploy.lock"


@dataclasses.dataclass(frozen=True)
class Payload:
    """A file delivered to every node beside the WAR, known by its checksum."""

    name: str
    path: Path
    sha256: str


@dataclasses.dataclass(frozen=True)
class AppDir:
    """One application's directory on the coordinator."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @functools.cached_property
    def config(self) -> config.AppConfig:
        return config.load(self.path / CONFIG, app=self.name)

    @property
    def history_path(self) -> Path:
        return self.path / HISTORY

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK

    def payloads(self) -> tuple[Payload, Payload]:
        """config.properties and .jettyrc, checked; both must exist."""
        return (self._properties(), self._payload(JETTYRC))

    def _payload(self, name: str) -> Payload:
        path = self.path / name
        if not path.is_file():
            raise ConfigError(f"{path}: missing; every node gets it (an empty file is fine)")
        return Payload(name, path, file_sha256(path))

    def _properties(self) -> Payload:
        payload = self._payload(PROPERTIES)
        try:
            javaproperties.loads(payload.path.read_text(encoding="latin-1"))
        except Exception as error:  # javaproperties raises its own family on bad escapes
            raise ConfigError(f"{payload.path}: not a valid .properties file ({error})") from None
        return payload


def locate(app_dir: str | None = None, app: str | None = None, cwd: Path | None = None) -> AppDir:
    """The app directory the user means; raise `UsageError` when there is none."""
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
    return AppDir(path)
