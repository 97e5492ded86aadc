"""Secrets such as a Tomcat manager password: where they may come from, and
that they never leave the process in clear.

A secret comes from the environment (``DEPLOY_SECRET_<NAME>``) or from a file
that only its owner can read; a file others can read is refused, since the
secret would already be out. Every secret loaded is remembered so that
`redact` can blank it out of anything shown or written (messages, history).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError

MASK = "******"
_LOADED: set[str] = set()


class Secret:
    """A secret value that prints as a mask; `reveal` is the one way to read it."""

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source
        if value:
            _LOADED.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(from {self.source})"

    def __str__(self) -> str:
        return MASK


def load(name: str, file: Path | None = None, environ: Mapping[str, str] | None = None) -> Secret:
    """The secret ``name``: the environment first, then ``file``; else `ConfigError`."""
    variable = f"DEPLOY_SECRET_{name.upper()}"
    environ = os.environ if environ is None else environ
    if environ.get(variable):
        return Secret(environ[variable], f"${variable}")
    if file is None:
        raise ConfigError(f"secret {name!r} is not set: export {variable} or name a secrets file")
    return Secret(_read_private(file), str(file))


def _read_private(file: Path) -> str:
    try:
        info = file.stat()
    except OSError as error:
        raise ConfigError(f"{file}: cannot read the secrets file ({error.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{file}: the secrets file is not a regular file")
    if info.st_mode & 0o077:
        mode = f"{stat.S_IMODE(info.st_mode):o}"
        raise ConfigError(
            f"{file}: the secrets file is readable by others (mode {mode}); run: chmod 600 {file}"
        )
    if info.st_uid != os.geteuid():
        raise ConfigError(f"{file}: the secrets file belongs to another user; it must be yours")
    lines = file.read_text(encoding="utf-8").splitlines()
    return lines[0].strip() if lines else ""


def redact(text: str) -> str:
    """``text`` with every loaded secret replaced by a mask."""
    for value in sorted(_LOADED, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
