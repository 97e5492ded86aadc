"""Reaching one node over SSH: what it holds, uploads, installs and restarts.

Every remote command is a short POSIX ``sh`` script whose variable parts are
quoted with `shlex.quote` (paths under ``~/`` become ``"$HOME"/'rest'``); only
the ``restart`` command from ``.config`` runs as the user wrote it.

The node keeps, under ``releases_dir``: ``blobs/SHA256`` (every WAR,
config.properties and .jettyrc it was sent, by checksum), ``current`` (the
installed release, one JSON line, replaced atomically) and ``releases.log``
(every install, one JSON line each), from which pruning keeps the newest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import socket
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection
from invoke.exceptions import CommandTimedOut

from . import hostkeys
from .config import NodeConfig
from .errors import NodeError
from .release import Release

_RECENT = 200  # releases.log lines read back: plenty for keep_releases
_FAST_FIRST = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _prefer_aead_ciphers() -> None:
    """Offer AES-GCM first: it needs no separate MAC pass, which makes staging a
    30 MB WAR measurably faster (paramiko lists it last). Servers without it
    (OpenSSH before 6.2) still get the other ciphers."""
    rest = tuple(c for c in paramiko.Transport._preferred_ciphers if c not in _FAST_FIRST)
    paramiko.Transport._preferred_ciphers = _FAST_FIRST + rest


_prefer_aead_ciphers()


def sh_path(path: str) -> str:
    """``path`` as one shell word, with a leading ``~/`` left to the remote shell."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


@dataclasses.dataclass(frozen=True)
class Inventory:
    """What a node holds, read in one round trip during the pre-flight."""

    home: str
    free_kib: int
    blobs: frozenset[str]
    current: Release | None
    installed: tuple[Release, ...]  # releases.log, oldest first: what pruning keeps


class Node:
    """One SSH connection to one node, opened once and reused for every step."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.host = config.host
        self._connection: Connection | None = None
        self.home = ""

    # -- connection ---------------------------------------------------------

    def open(self) -> None:
        """Connect, checking the host key; raise `NodeError` saying why not."""
        if self._connection is not None:
            return
        try:
            connection = _connection(self.config)
        except OSError as error:
            raise NodeError(
                f"{self.host}: cannot read known_hosts {self.config.known_hosts} ({error})"
            ) from None
        try:
            connection.open()
        except Exception as error:
            connection.close()
            raise NodeError(f"{self.host}: {_connect_reason(self.config, error)}") from None
        self._connection = connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def run(self, script: str, what: str, timeout: float | None = None) -> str:
        """Run ``script`` and return stdout; a non-zero exit is a `NodeError` about ``what``."""
        self.open()
        assert self._connection is not None
        try:
            result = self._connection.run(
                script, hide=True, warn=True, in_stream=False, timeout=timeout
            )
        except CommandTimedOut:
            raise NodeError(f"{self.host}: {what}: no answer within {timeout:g} s") from None
        except (OSError, EOFError, paramiko.SSHException) as error:
            self.close()
            raise NodeError(f"{self.host}: {what}: connection lost ({error})") from None
        if result.exited != 0:
            detail = (result.stderr.strip() or result.stdout.strip())[-400:]
            raise NodeError(f"{self.host}: {what} failed (exit {result.exited}): {detail}")
        return str(result.stdout)

    # -- what the node holds ------------------------------------------------

    def inventory(self) -> Inventory:
        """HOME, free space, blobs and releases, in one command."""
        d = sh_path(self.config.releases_dir)
        script = (
            f'set -e; d={d}; mkdir -p "$d/blobs"; rm -f "$d"/blobs/*.part; '
            'printf "home %s\\n" "$HOME"; '
            'printf "free %s\\n" "$(df -Pk "$d" | awk \'NR==2 {print $4}\')"; '
            'for f in "$d"/blobs/*; do [ -e "$f" ] && printf "blob %s\\n" "${f##*/}"; done; '
            '[ -f "$d/current" ] && printf "current %s\\n" "$(cat "$d/current")"; '
            f'[ -f "$d/releases.log" ] && tail -n {_RECENT} "$d/releases.log" '
            "| sed 's/^/release /'; true"
        )
        inventory = _parse_inventory(self.run(script, "reading the releases directory"))
        self.home = inventory.home
        return inventory

    def absolute(self, path: str) -> str:
        """``path`` with ``~`` replaced by the node's HOME (for SFTP)."""
        if path == "~" or path.startswith("~/"):
            return self.home + path[1:]
        return path

    # -- changing the node --------------------------------------------------

    def upload(self, local: Path, sha256: str) -> int:
        """Send ``local`` as ``blobs/SHA256``, verified on the node; return bytes sent."""
        blobs = self.absolute(self.config.releases_dir) + "/blobs"
        part = f"{blobs}/{sha256}.part"
        self.open()
        assert self._connection is not None
        try:
            self._connection.put(str(local), part)
        except (OSError, EOFError, paramiko.SSHException) as error:
            free = self._remove_partial(part, blobs)
            raise NodeError(
                f"{self.host}: upload of {local.name} failed ({error}); the partial file was "
                f"removed; {free} KiB free in {self.config.releases_dir}"
            ) from None
        self.verify_part(part, f"{blobs}/{sha256}", sha256, local.name)
        return local.stat().st_size

    def verify_part(self, part: str, final: str, sha256: str, name: str) -> None:
        """Check the uploaded checksum on the node, then rename; remove it if wrong."""
        p, f, want = shlex.quote(part), shlex.quote(final), shlex.quote(sha256)
        # openssl uses the CPU's SHA instructions (3x faster here); sha256sum if absent.
        script = (
            f"s=$( (openssl dgst -sha256 -r {p} 2>/dev/null || sha256sum {p}) | cut -d' ' -f1); "
            f'if [ "$s" = {want} ]; then mv -f {p} {f}; '
            f'else rm -f {p}; echo "checksum on the node is $s" >&2; exit 3; fi'
        )
        try:
            self.run(script, f"checking the upload of {name}")
        except NodeError as error:
            raise NodeError(
                f"{error}; expected {sha256}: the copy was damaged, deploy again"
            ) from None

    def _remove_partial(self, path: str, directory: str) -> str:
        """Remove a failed upload; return the free KiB left (a full disk shows as 0)."""
        script = (
            f"rm -f {shlex.quote(path)}; df -Pk {shlex.quote(directory)} | awk 'NR==2 {{print $4}}'"
        )
        # If this fails too, the next inventory removes *.part leftovers.
        with contextlib.suppress(NodeError):
            return self.run(script, "removing a partial upload").strip() or "?"
        return "?"

    def install(self, release: Release) -> None:
        """Put the release's files in place and record it, all or nothing.

        Every file is first copied next to its target under a hidden name; only
        when all three copies exist are they renamed over the targets, the WAR
        last, so a hot-deploying Jetty never starts it with the old config.
        A copy, not a link: the fresh mtime makes Jetty unpack the WAR again
        even when an older release comes back (a kept file's old mtime would not).
        """
        c = self.config
        files = (
            (release.config, c.config_path),
            (release.jettyrc, c.jettyrc_path),
            (release.war, c.war_path),
        )
        staged = [(sha, target, _hidden_beside(target)) for sha, target in files]
        temps = " ".join(sh_path(tmp) for _, _, tmp in staged)
        lines = [
            "set -e",
            f"d={sh_path(c.releases_dir)}",
            f"trap {shlex.quote(f'rm -f {temps}')} EXIT",
        ]
        for sha, target, tmp in staged:
            lines.append(f"mkdir -p {sh_path(_parent(target))}")
            lines.append(f'cp "$d/blobs/"{shlex.quote(sha)} {sh_path(tmp)}')
        lines += [f"mv -f {sh_path(tmp)} {sh_path(target)}" for _, target, tmp in staged]
        record = shlex.quote(release.to_json())
        lines += [
            f'printf "%s\\n" {record} > "$d/current.new"',
            'mv -f "$d/current.new" "$d/current"',
            f'printf "%s\\n" {record} >> "$d/releases.log"',
        ]
        self.run("\n".join(lines), "installing the release")

    def restart(self) -> None:
        """Run the ``.config`` restart command (the user's own shell command)."""
        self.run(self.config.restart, "the restart command", timeout=self.config.ready_timeout)

    def prune(self, inventory: Inventory, keep: frozenset[str]) -> None:
        """Delete blobs no kept release refers to."""
        doomed = sorted(inventory.blobs - keep)
        if not doomed:
            return
        d = sh_path(self.config.releases_dir)
        names = " ".join(shlex.quote(name) for name in doomed)
        self.run(f"cd {d}/blobs && rm -f -- {names}", "removing old releases")


def _parent(target: str) -> str:
    head, slash, _ = target.rpartition("/")
    return head or ("/" if slash else ".")


def _hidden_beside(target: str) -> str:
    """A hidden name in the target's directory: same filesystem, so the rename is atomic."""
    name = target.rpartition("/")[2]
    return f"{_parent(target).rstrip('/')}/.{name}.deploy-new"


def _parse_inventory(text: str) -> Inventory:
    fields: dict[str, Any] = {"home": "", "free": 0, "blobs": set(), "current": None}
    installed: list[Release] = []
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word == "blob":
            fields["blobs"].add(rest)
        elif word == "current":
            fields["current"] = Release.from_json(rest)
        elif word == "release" and (release := Release.from_json(rest)) is not None:
            installed.append(release)
        elif word in ("home", "free"):
            fields[word] = rest
    return Inventory(
        home=fields["home"],
        free_kib=int(fields["free"] or 0),
        blobs=frozenset(fields["blobs"]),
        current=fields["current"],
        installed=tuple(installed),
    )


def _connection(config: NodeConfig) -> Connection:
    """A Fabric connection that checks host keys against ``known_hosts``."""
    kwargs: dict[str, Any] = {
        "banner_timeout": config.connect_timeout,
        "auth_timeout": config.connect_timeout,
    }
    if config.identity_file:
        kwargs.update(
            key_filename=str(Path(config.identity_file).expanduser()),
            look_for_keys=False,
            allow_agent=False,
        )
    fabric_config = Config(overrides={"load_ssh_configs": False})
    connection = Connection(
        config.host,
        user=config.user,
        port=config.port,
        connect_kwargs=kwargs,
        config=fabric_config,
        connect_timeout=config.connect_timeout,
    )
    known = Path(config.known_hosts).expanduser()
    hostkeys.load(connection.client, known)
    policy: paramiko.MissingHostKeyPolicy = paramiko.RejectPolicy()
    if config.accept_unknown_hosts:
        policy = hostkeys.TrustOnFirstUse(known)
    connection.client.set_missing_host_key_policy(policy)
    return connection


def _connect_reason(config: NodeConfig, error: Exception) -> str:
    """Turn paramiko's and the socket's exceptions into what to do."""
    known = config.known_hosts
    if isinstance(error, paramiko.BadHostKeyException):
        return (
            f"HOST KEY CHANGED (the server's key is not the one in {known}); this may be an "
            f"attack. If the node was rebuilt, remove the old key: ssh-keygen -R "
            f"{shlex.quote(config.host)} -f {shlex.quote(known)}"
        )
    if isinstance(error, paramiko.PasswordRequiredException) or "encrypted" in str(error):
        return (
            f"the identity_file {config.identity_file} is passphrase-protected; load it into "
            "ssh-agent and leave identity_file empty"
        )
    if isinstance(error, paramiko.AuthenticationException):
        return f"SSH login as {config.user!r} refused; check user and identity_file"
    if isinstance(error, paramiko.SSHException) and "not found in known_hosts" in str(error):
        return (
            f"unknown host key (not in {known}); add it with ssh-keyscan after checking "
            "its fingerprint, or set accept_unknown_hosts = yes in .config"
        )
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"SSH connect timed out after {config.connect_timeout:g} s"
    if isinstance(error, (OSError, paramiko.SSHException, EOFError)):
        return f"SSH on port {config.port} unreachable ({error})"
    return f"SSH connect failed ({type(error).__name__}: {error})"
