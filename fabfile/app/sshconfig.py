"""The user's ssh_config, read with Paramiko's own parser: aliases, HostName, User,
Port, IdentityFile, ProxyJump, UserKnownHostsFile and GlobalKnownHostsFile, as ``ssh``
itself would use them.

``.config`` settings win over it (``user``, ``port``, ``identity_file``,
``known_hosts``). The file is ``ssh_config`` from ``.config``, else ``~/.ssh/config``
when there is one. We resolve a host here, once, and hand Fabric plain addresses and
our own jump chain (`fabfile.cluster.node`): Fabric's own ProxyJump handling accepts
any jump host's key, and host keys stay as strict through a jump host as without one.

`fabfile.app.sshfile` reads the file first: it follows ``Include`` lines (Paramiko
ignores them) and refuses a command in a file that ``.config`` names; a ``Match exec``
of the user's own ``~/.ssh/config`` runs its command, as OpenSSH does.
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from . import knownhosts, sshfile
from .knownhosts import GLOBAL_DEFAULT, USER_DEFAULT

if TYPE_CHECKING:
    import paramiko

DEFAULT = "~/.ssh/config"


@dataclasses.dataclass(frozen=True)
class Resolved:
    """What a host name means to SSH: where to connect, as whom, through which jumps."""

    address: str  # HostName, or the name itself
    user: str
    port: int
    identity_files: tuple[str, ...]  # those that exist, in ssh_config's order
    jumps: tuple[str, ...]  # ProxyJump hops, first dialled first
    source: str  # the ssh_config file read ('' when none)
    named: bool  # the file gives it a HostName of its own
    known_hosts: tuple[str, ...] = USER_DEFAULT  # UserKnownHostsFile, expanded
    global_known_hosts: tuple[str, ...] = GLOBAL_DEFAULT  # GlobalKnownHostsFile

    def describe(self, name: str) -> str:
        """Where ``name`` came from, for an error about it."""
        if not self.source:
            return f"no ssh_config was read ({DEFAULT} does not exist)"
        if self.named:
            return f"{self.source} gives HostName {self.address}"
        return f"{self.source} was read and gives no HostName for {name!r}"


def path_of(setting: str) -> Path | None:
    """The file to read: the ``ssh_config`` setting, or the default when it exists."""
    if setting:
        return Path(setting).expanduser()
    default = Path(DEFAULT).expanduser()
    return default if default.is_file() else None


@functools.lru_cache(maxsize=8)
def _parsed(text: str) -> paramiko.SSHConfig:
    """One parse per text (the file and what it includes, read for every host: the
    files are small, and an included file may change while the top one does not)."""
    import paramiko  # only where there is a file to parse: it costs a tenth of a second

    return paramiko.SSHConfig.from_text(text)


def load(setting: str, where: str) -> tuple[paramiko.SSHConfig, str]:
    """The parsed file and its path ('' and an empty config when there is none);
    `ConfigError` naming ``where`` (the ``.config`` line) when it cannot be read."""
    import paramiko

    path = path_of(setting)
    if path is None:
        return paramiko.SSHConfig(), ""
    try:
        return _parsed(sshfile.text(path, where)), str(path)
    except FileNotFoundError:
        raise ConfigError(f"{where}: {path}: no such file; fix ssh_config") from None
    except OSError as error:
        raise ConfigError(f"{where}: {path}: cannot read it ({error.strerror})") from None
    except paramiko.ssh_exception.ConfigParseError as error:
        raise ConfigError(f"{where}: {path}: {error}; fix that line") from None


def hop(spec: str, setting: str, where: str) -> Resolved:
    """One ProxyJump hop, ``[ssh://][user@]host[:port]``, resolved as a host of its own
    (its own ProxyJump is not followed: give the whole chain in the node's ProxyJump)."""
    rest = spec.removeprefix("ssh://")
    user, _, rest = rest.rpartition("@")
    host, port = rest, 0
    if rest.count(":") == 1:
        host, _, number = rest.partition(":")
        if not number.isdigit():
            raise ConfigError(f"{where}: ProxyJump {spec!r}: the port is not a number")
        port = int(number)
    return resolve(host, setting, where, user, port)


def plain(name: str, user: str, port: int = 0) -> Resolved:
    """``name`` as ssh sees it without an ssh_config file (`path_of` is None)."""
    return Resolved(name, user, port or 22, (), (), "", False)


def resolve(name: str, setting: str, where: str, user: str = "", port: int = 0) -> Resolved:
    """``name`` as ssh would see it; ``user`` and ``port`` (from ``.config``) win."""
    if path_of(setting) is None:  # no file: the name as it is (and Paramiko stays unloaded)
        return plain(name, user or getpass.getuser(), port)
    parsed, source = load(setting, where)
    found = parsed.lookup(name)
    address = found.get("hostname", name)  # paramiko answers the name itself without one
    jumps = tuple(hop.strip() for hop in str(found.get("proxyjump", "")).split(",") if hop.strip())
    if jumps == ("none",):
        jumps = ()
    try:
        found_port = int(found.get("port", 22))
    except ValueError:
        raise ConfigError(f"{where}: {source}: Port {found.get('port')!r} for {name!r}") from None
    keys = tuple(
        key for key in found.get("identityfile", []) if os.path.isfile(os.path.expanduser(key))
    )  # ssh skips a missing IdentityFile; paramiko would fail the login on it
    user = user or found.get("user") or getpass.getuser()
    port = port or found_port
    host = knownhosts.Host(name, address, port, user, found.get("hostkeyalias", ""))
    try:
        known, global_known = knownhosts.files(found, host)
    except ValueError as error:
        raise ConfigError(f"{where}: {source}: {error}, for {name!r}") from None
    return Resolved(
        address=address,
        user=user,
        port=port,
        identity_files=keys,
        jumps=jumps,
        source=source,
        named=address != name,
        known_hosts=known,
        global_known_hosts=global_known,
    )
