"""An ssh_config file's text as ssh reads it, before Paramiko parses it: every
``Include`` followed (Paramiko ignores them), and no command run that ``.config`` asked for.

``.config`` is data: a file it names (``ssh_config = PATH``) may not make the coordinator
run a command, so ``Match exec``, ``ProxyCommand``, ``LocalCommand`` and
``KnownHostsCommand`` are refused there, in the file and in every file it includes. The
user's own ``~/.ssh/config`` (by its resolved path) and the files it includes are the
user's: commands there are theirs (Paramiko runs ``Match exec`` as ssh does).

An included file is read in place of its ``Include`` line. Inside a ``Host`` or ``Match``
block its lines belong to that block, as in ssh; an included file with blocks of its own
there is refused, since ssh would apply them only where both blocks match, which
Paramiko's parser cannot say.
"""

from __future__ import annotations

import glob
import re
import shlex
from pathlib import Path

from ..errors import ConfigError

OWN = "~/.ssh/config"
MAX_DEPTH = 16  # OpenSSH's READCONF_MAX_DEPTH
_LINE = re.compile(r"^\s*(\w+)(?:\s*=\s*|\s+)(.*?)\s*$")
_COMMANDS = {
    "proxycommand": ("ProxyCommand", "name the jump host in ProxyJump instead"),
    "localcommand": ("LocalCommand", "remove it (deploy runs no LocalCommand)"),
    "knownhostscommand": (
        "KnownHostsCommand",
        "remove it, and name the file in UserKnownHostsFile or known_hosts in .config",
    ),
}


def text(path: Path, where: str) -> str:
    """The file with its includes in place; `ConfigError` naming ``where`` (the
    ``.config`` line) and the file's own line for a command it would run."""
    return "".join(line + "\n" for line in _lines(path, where, trusted=False, depth=0))


def is_own(path: Path) -> bool:
    """The user's own ``~/.ssh/config``, through any symlink."""
    return path.resolve() == Path(OWN).expanduser().resolve()


def _lines(path: Path, where: str, trusted: bool, depth: int) -> list[str]:
    """The lines of ``path``, ``Include`` lines replaced by what they name."""
    trusted = trusted or is_own(path)
    out: list[str] = []
    header = ""  # the Host or Match line the next line belongs to ('' at the top)
    for number, line in enumerate(_read(path, where, depth), start=1):
        match = _LINE.match(line)
        key, value = (match.group(1).lower(), match.group(2)) if match else ("", "")
        if not trusted:
            _refuse_command(f"{where}: {path}:{number}", key, value)
        if key in ("host", "match"):
            header = line.strip()
        if key != "include":
            out.append(line)
            continue
        if depth + 1 >= MAX_DEPTH:
            raise ConfigError(f"{where}: {path}:{number}: Include nested too deep (a loop?)")
        for name in _included(value):
            inner = _lines(name, where, trusted, depth + 1)
            if any(_key(ln) in ("host", "match") for ln in inner):
                if header:
                    raise ConfigError(
                        f"{where}: {path}:{number}: Include inside {header!r} names {name}, "
                        "which has Host or Match blocks of its own; move the Include above "
                        "the first Host or Match line"
                    )
                inner.append("Host *")  # back at the top, where this Include stood
            out += inner
    return out


def _read(path: Path, where: str, depth: int) -> list[str]:
    """The file's lines; an included file that cannot be read is named (the file
    ``.config`` names is checked by `fabfile.app.sshconfig.load`)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        if not depth:
            raise
        raise ConfigError(
            f"{where}: {path} (included): cannot read it ({error.strerror})"
        ) from None


def _key(line: str) -> str:
    match = _LINE.match(line)
    return match.group(1).lower() if match else ""


def _included(value: str) -> list[Path]:
    """The files an ``Include`` names, as ssh finds them: ``~`` expanded, a relative
    path under ``~/.ssh``, wildcards in sorted order, a missing file skipped."""
    found: list[Path] = []
    for word in _words(value):
        pattern = Path(word).expanduser()
        if not pattern.is_absolute():
            pattern = Path("~/.ssh").expanduser() / pattern
        found += [Path(p) for p in sorted(glob.glob(str(pattern))) if Path(p).is_file()]
    return found


def _refuse_command(where: str, key: str, value: str) -> None:
    """`ConfigError` for a line that would run a command on the coordinator."""
    if key in _COMMANDS and value.lower() != "none":
        directive, instead = _COMMANDS[key]
    elif key == "match" and any(w.lower().lstrip("!") == "exec" for w in _words(value)):
        directive, instead = "Match exec", "match on Host names instead"
    else:
        return
    raise ConfigError(
        f"{where}: {directive} would run a command on this machine, and deploy runs none "
        f"from an ssh_config that .config names; {instead}, or move the host into your "
        f"own {OWN} and leave ssh_config empty"
    )


def _words(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError:  # an unbalanced quote: ssh would refuse the line, paramiko not
        return value.split()
