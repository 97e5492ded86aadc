"""Which known_hosts files ssh reads for a host: ``UserKnownHostsFile`` (its ``~``,
``${VAR}`` and %-tokens expanded as OpenSSH 9 expands them) and ``GlobalKnownHostsFile``
(taken as written, as ssh does), each with ssh's default when the ssh_config sets none.

``~`` and ``%d`` are ``$HOME``, as everywhere else in deploy (ssh takes the home
directory from the password database; the two differ only when ``HOME`` is changed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pwd
import re
import shlex
import socket
from collections.abc import Mapping
from typing import Any

USER_DEFAULT = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
GLOBAL_DEFAULT = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
_TOKEN = re.compile(r"%(.)")
_VARIABLE = re.compile(r"\$\{(\w+)\}")


@dataclasses.dataclass(frozen=True)
class Host:
    """What the tokens are made of: the host as ssh connects to it."""

    name: str  # %n: as given (the alias)
    address: str  # %h: HostName
    port: int  # %p
    user: str  # %r: the remote user
    alias: str = ""  # %k: HostKeyAlias, else the name


def files(found: Mapping[str, Any], host: Host) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(user files, global files) for the host that ``found`` (Paramiko's lookup)
    describes; ``none`` gives no file of that kind."""
    user = _words(found.get("userknownhostsfile"), USER_DEFAULT)
    global_ = _words(found.get("globalknownhostsfile"), GLOBAL_DEFAULT)
    return tuple(expand(word, host) for word in user), global_


def expand(word: str, host: Host) -> str:
    """One ``UserKnownHostsFile`` word as ssh expands it; `ValueError` for a token
    ssh does not know there."""
    word = os.path.expanduser(word)
    word = _VARIABLE.sub(lambda m: os.environ.get(m.group(1), ""), word)
    tokens = _tokens(host)

    def one(match: re.Match[str]) -> str:
        if match.group(1) not in tokens:
            raise ValueError(f"UserKnownHostsFile {word!r}: ssh knows no %{match.group(1)}")
        return tokens[match.group(1)]

    return _TOKEN.sub(one, word)


def _tokens(host: Host) -> dict[str, str]:
    local = socket.gethostname()
    me = pwd.getpwuid(os.getuid()).pw_name
    connection = f"{local}{host.address}{host.port}{host.user}"
    return {
        "%": "%",
        "C": hashlib.sha1(connection.encode()).hexdigest(),  # ssh's own hash, not a secret
        "d": os.path.expanduser("~"),
        "h": host.address,
        "i": str(os.getuid()),
        "k": host.alias or host.name,
        "L": local.split(".")[0],
        "l": local,
        "n": host.name,
        "p": str(host.port),
        "r": host.user,
        "u": me,
    }


def _words(value: object, default: tuple[str, ...]) -> tuple[str, ...]:
    """The files a setting lists (several, space-separated, quoted as ssh quotes)."""
    if not value:
        return default
    try:
        words = tuple(shlex.split(str(value)))
    except ValueError:
        words = tuple(str(value).split())
    return () if [w.lower() for w in words] == ["none"] else words
