"""Host keys: checked against the known_hosts files ssh would read, never accepted
silently.

Which files: ``known_hosts`` from ``.config`` when set, else the host's
``UserKnownHostsFile`` from ssh_config (ssh's default without one), and always its
``GlobalKnownHostsFile`` (`KnownHosts.of`), for a node and for each jump host alike.

paramiko's own loader stops at a line it cannot parse (``@cert-authority``,
key types it does not know) and its AutoAddPolicy rewrites the whole file,
dropping such lines. Here every line paramiko understands is loaded, the rest
is left alone, and a key accepted on first use (only when ``.config`` opts in)
is appended as one line to the first user file, under a file lock, so parallel
connections cannot lose each other's keys.
"""

from __future__ import annotations

import dataclasses
import fcntl
import shlex
import threading
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry

from ..app.config import NodeConfig
from ..app.sshconfig import Resolved

_APPEND = threading.Lock()


@dataclasses.dataclass(frozen=True)
class KnownHosts:
    """The known_hosts files one SSH hop is checked against, in ssh's order."""

    user: tuple[Path, ...]  # known_hosts, else UserKnownHostsFile: the first records keys
    system: tuple[Path, ...]  # GlobalKnownHostsFile

    @classmethod
    def of(cls, config: NodeConfig, ssh: Resolved | None) -> KnownHosts:
        """The files for ``ssh``: the node, or one of its jump hosts."""
        user: tuple[str, ...] = (config.known_hosts,) if config.known_hosts else ()
        if not user and ssh is not None:
            user = ssh.known_hosts
        system = ssh.global_known_hosts if ssh is not None else ()
        return cls(
            tuple(Path(f).expanduser() for f in user), tuple(Path(f).expanduser() for f in system)
        )

    @property
    def files(self) -> tuple[Path, ...]:
        return self.user + self.system

    def load(self, client: paramiko.SSHClient) -> None:
        """Every file's keys; read last to first, so that of two keys of one type for
        a host, the one in the file ssh reads first is kept."""
        for path in reversed(self.files):
            load(client, path)

    def policy(self, accept_unknown: bool) -> paramiko.MissingHostKeyPolicy:
        """Refuse an unknown key, or record it in the first user file."""
        if accept_unknown and self.user:
            return TrustOnFirstUse(self.user[0])
        return paramiko.RejectPolicy()

    def describe(self) -> str:
        """The files read, those that do not exist said so."""
        there = [str(f) for f in self.files if f.exists()]
        absent = [str(f) for f in self.files if not f.exists()]
        told = ", ".join(there) or "no file"
        if absent:
            told += f"; {', '.join(absent)} {'does' if len(absent) == 1 else 'do'} not exist"
        return told

    def holding(self, name: str) -> tuple[Path, ...]:
        """The files with an entry for ``name`` (as known_hosts writes it)."""
        found = []
        for path in self.files:
            client = paramiko.SSHClient()
            load(client, path)
            if client.get_host_keys().lookup(name) is not None:
                found.append(path)
        return tuple(found)

    def unknown(self, name: str, address: str, port: int) -> str:
        """What to say of a key found in none of the files."""
        scan = f"ssh-keyscan -p {port} {shlex.quote(address)}"
        target = f" >> {shlex.quote(str(self.user[0]))}" if self.user else ""
        return (
            f"unknown host key for {name} (not in {self.describe()}); check its fingerprint, "
            f"then add it: {scan}{target}; or set accept_unknown_hosts = yes in .config "
            "(known_hosts in .config, else UserKnownHostsFile in ssh_config, names the file)"
        )

    def changed(self, name: str) -> str:
        """What to say of a key that is not the one a file holds."""
        holding = self.holding(name) or self.files
        shown = ", ".join(str(f) for f in holding)
        remove = " and ".join(
            f"ssh-keygen -R {shlex.quote(name)} -f {shlex.quote(str(f))}" for f in holding
        )
        return (
            f"HOST KEY CHANGED for {name} (the server's key is not the one in {shown}); "
            f"this may be an attack. If the host was rebuilt, remove the old key: {remove}"
        )


def load(client: paramiko.SSHClient, path: Path) -> None:
    """Add every usable entry of ``path`` to the client's host keys."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return
    keys = client.get_host_keys()
    for line in lines:
        if not line.strip() or line.lstrip().startswith(("#", "@")):
            continue
        try:
            entry = HostKeyEntry.from_line(line)
        except Exception:  # InvalidHostKey, binascii and others: the line is not ours
            entry = None
        if entry is None or entry.key is None:
            continue
        for name in entry.hostnames:
            keys.add(name, entry.key.get_name(), entry.key)


class TrustOnFirstUse(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """Accept an unknown key and record it, for ``accept_unknown_hosts = yes``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _APPEND, self.path.open("a", encoding="utf-8") as stream:
            fcntl.flock(stream, fcntl.LOCK_EX)
            stream.write(line)
        client.get_host_keys().add(hostname, key.get_name(), key)
