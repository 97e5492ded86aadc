"""The ``[hooks]`` section of ``.config``: commands run on this machine around a run.

They live in their own section, not in ``[deploy]``: a hook is a command for the
coordinator, not a node setting, and ``[host:NAME]`` cannot override it. The names are
Kamal's hook files' (``pre-deploy`` ...) spelt as ini keys, and what a Capistrano
``before``/``after`` task would hang on. A command is run by ``sh -c`` exactly as
written; the run's facts reach it only through its environment, never pasted in.

A command that runs on this machine must be as safe as the file it comes from: one
that someone else could have written (group/other-writable, or owned by another user)
is refused, naming the file and the ``chmod`` that fixes it (`check_safe`).
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import shlex
import stat
from pathlib import Path

from ..errors import ConfigError
from .ini import HOOKS as SECTION
from .ini import Source
from .values import parse_positive_seconds

# name: when it runs (the README's table and the ``did you mean`` list)
HOOKS: dict[str, str] = {
    "pre_deploy": "before a deploy, rollback or switch changes any node (after pre-flight); "
    "failing stops the run, nothing changed",
    "pre_switch": "blue/green: before traffic moves to the new colour (each group of hosts "
    "switched); failing stops the run there, the live colour untouched",
    "post_deploy": "after a deploy or switch ended well; failing is reported and recorded",
    "post_rollback": "after a rollback ended well; failing is reported and recorded",
    "on_failure": "after a run failed or was interrupted",
}
TIMEOUT = "timeout"
DEFAULT_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class Hooks:
    """The commands of ``[hooks]`` by name, where each is written, and their timeout."""

    commands: dict[str, str] = dataclasses.field(default_factory=dict)
    lines: dict[str, int] = dataclasses.field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    path: Path | None = None  # the .config that defines them

    def where(self, name: str) -> str:
        return f"{self.path}:{self.lines.get(name, 1)}: [{SECTION}] {name}"


def parse(path: Path, parser: configparser.ConfigParser, source: Source) -> Hooks:
    """``[hooks]`` as written; `ConfigError` naming file, line and key."""
    if not parser.has_section(SECTION):
        return Hooks(path=path)
    commands: dict[str, str] = {}
    timeout = DEFAULT_TIMEOUT
    for key in parser.options(SECTION):
        where = f"{path}:{source.line(SECTION, key)}: [{SECTION}] {key}"
        raw = parser.get(SECTION, key)
        if key == TIMEOUT:
            try:
                timeout = parse_positive_seconds(raw)
            except ValueError as error:
                raise ConfigError(f"{where} = {raw.strip()!r}: {error}") from None
        elif key not in HOOKS:
            close = _meant(key)
            hint = f"did you mean '{close}'?" if close else f"hooks are {', '.join(HOOKS)}"
            raise ConfigError(f"{where}: unknown hook; {hint}")
        elif raw.strip():
            commands[key] = raw.strip()  # continuation lines: one line each for sh
    lines = {key: source.line(SECTION, key) for key in commands}
    return Hooks(commands, lines, timeout, path)


def _meant(key: str) -> str:
    """The hook a Kamal (``pre-deploy``) or Capistrano (``after_deploy``) user meant."""
    word = key.replace("-", "_").replace("before_", "pre_").replace("after_", "post_")
    if word in HOOKS:
        return word
    import difflib  # for a mistake only: a good .config does not pay its import

    close = difflib.get_close_matches(word, [*HOOKS, TIMEOUT], n=1)
    return close[0] if close else ""


def check_safe(hooks: Hooks, app_dir: Path) -> None:
    """Refuse hooks that someone else could have written: the ``.config`` that defines
    them, and a script a hook names by path (its first word), when group/other-writable
    or another user's (root's is fine)."""
    if not hooks.commands or hooks.path is None:
        return
    _check_file(hooks.path, "holds [hooks], commands run on this machine,")
    for name, command in hooks.commands.items():
        for script in _scripts(command, app_dir):
            _check_file(script, f"is run on this machine by {hooks.where(name)},")


def _scripts(command: str, app_dir: Path) -> list[Path]:
    """The files a command names: ``hooks/pre-deploy``, and ``deploy.sh`` in ``sh
    deploy.sh`` or ``python3 notify.py`` (an interpreter runs them as they are)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return []
    found = []
    for word in words:
        path = Path(word).expanduser()
        path = path if path.is_absolute() else app_dir / path
        if ("/" in word or (app_dir / word).exists()) and path.is_file():
            found.append(path)
    return found


def _check_file(path: Path, what: str) -> None:
    try:
        info = path.stat()
    except OSError as error:
        raise ConfigError(f"{path} {what} and cannot be read ({error.strerror})") from None
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        who = {0o022: "group and others", 0o020: "group", 0o002: "others"}[mode & 0o022]
        raise ConfigError(
            f"{path} {what} and is writable by {who} "
            f"(mode {mode:o}): anyone who can write it runs commands as you. "
            f"Run: chmod go-w {shlex.quote(str(path))}"
        )
    if info.st_uid not in (os.geteuid(), 0):
        raise ConfigError(
            f"{path} {what} and belongs to another user "
            f"(uid {info.st_uid}); it must be yours (or root's)"
        )
