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

import base64
import contextlib
import dataclasses
import logging
import shlex
import socket
import urllib.parse
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection
from invoke.exceptions import CommandTimedOut

from ..app.config import NodeConfig
from ..app.release import Release
from ..app.sshconfig import Resolved
from ..errors import NodeError
from . import hostkeys, portowner, restartclaim
from .address import url_port
from .portowner import PortReport
from .restartclaim import Claim
from .shell import sh_path

_RECENT = 200  # releases.log lines read back: plenty for keep_releases
_FAST_FIRST = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _prefer_aead_ciphers() -> None:
    """Offer AES-GCM first: it needs no separate MAC pass, which makes staging a
    30 MB WAR measurably faster (paramiko lists it last). Servers without it
    (OpenSSH before 6.2) still get the other ciphers."""
    rest = tuple(c for c in paramiko.Transport._preferred_ciphers if c not in _FAST_FIRST)
    paramiko.Transport._preferred_ciphers = _FAST_FIRST + rest


_prefer_aead_ciphers()
# paramiko logs connection failures itself ("Exception (client): Error reading SSH
# protocol banner"); the user reads our sentence about them instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


@dataclasses.dataclass(frozen=True)
class Inventory:
    """What a node holds, read in one round trip during the pre-flight."""

    home: str
    free_kib: int
    blobs: frozenset[str]
    current: Release | None
    installed: tuple[Release, ...]  # releases.log, oldest first: what pruning keeps
    claim: Claim | None = None  # a restart claim found on the node (`fabfile.cluster.restartclaim`)
    held: tuple[Release, ...] = ()  # what every instance on the node runs: pruning keeps it
    # checksums of the files at config_path, jettyrc_path and logback_path ('' if absent)
    files: tuple[tuple[str, str], ...] = ()

    def file(self, kind: str) -> str:
        """The checksum of the file the node has at that kind's path ('' when absent)."""
        return dict(self.files).get(kind, "")


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
            hop = _failed_hop(self.config, connection)
            _close(connection)
            reason = _connect_reason(self.config, error, hop)
            raise NodeError(f"{self.host}: {reason}") from None
        self._connection = connection

    def close(self) -> None:
        if self._connection is not None:
            _close(self._connection)
            self._connection = None

    def run(self, script: str, what: str, timeout: float | None = None) -> str:
        """Run ``script`` and return stdout; a non-zero exit is a `NodeError` about ``what``."""
        result = self._exec(script, what, timeout)
        if result.exited != 0:
            raise NodeError(f"{self.host}: {what} failed (exit {result.exited}): {_tail(result)}")
        return str(result.stdout)

    def _exec(self, script: str, what: str, timeout: float | None = None) -> Any:
        """Run ``script``; return Fabric's result whatever its exit code."""
        self.open()
        assert self._connection is not None
        try:
            return self._connection.run(
                script, hide=True, warn=True, in_stream=False, timeout=timeout
            )
        except CommandTimedOut:
            raise NodeError(f"{self.host}: {what}: no answer within {timeout:g} s") from None
        except (OSError, EOFError, paramiko.SSHException) as error:
            self.close()
            raise NodeError(f"{self.host}: {what}: connection lost ({error})") from None

    # -- what the node holds ------------------------------------------------

    def inventory(self, tidy: bool = True) -> Inventory:
        """HOME, free space, blobs, releases and the installed files' checksums, in one
        command. ``tidy`` also creates the releases directory and removes partial
        uploads (a dry run changes nothing)."""
        d = sh_path(self.config.releases_dir)
        current = _current_file(self.config.instance)
        tidying = 'mkdir -p "$d/blobs"; rm -f "$d"/blobs/*.part; ' if tidy else ""
        script = (
            f"set -e; d={d}; {tidying}"
            'printf "home %s\\n" "$HOME"; '
            'printf "free %s\\n" "$(df -Pk "$d" | awk \'NR==2 {print $4}\')"; '
            'for f in "$d"/blobs/*; do [ -e "$f" ] && printf "blob %s\\n" "${f##*/}"; done; '
            f'[ -f "$d/{current}" ] && printf "current %s\\n" "$(cat "$d/{current}")"; '
            'for f in "$d"/current "$d"/current.*; do [ -f "$f" ] && '
            'printf "held %s\\n" "$(cat "$f")"; done; '
            f'[ -f "$d/releases.log" ] && tail -n {_RECENT} "$d/releases.log" '
            "| sed 's/^/release /'; "
            + self._checksum_script()
            + restartclaim.read_script(self.config.releases_dir)
        )
        inventory = _parse_inventory(self.run(script, "reading the releases directory"))
        self.home = inventory.home
        return inventory

    def _checksum_script(self) -> str:
        c = self.config
        paths = {"config": c.config_path, "jettyrc": c.jettyrc_path, "logback": c.logback_path}
        return "".join(
            f"[ -f {sh_path(path)} ] && printf 'file {kind} %s\\n' "
            f'"$( (sha256sum || openssl dgst -sha256 -r) < {sh_path(path)} | cut -d" " -f1)"; '
            for kind, path in paths.items()
            if path
        )

    def read_files(
        self, words: list[str], before: str = "", limit: int = 1 << 20
    ) -> list[bytes | None]:
        """The node's files, in one round trip: each of ``words`` is one shell word naming a
        file (quoted by the caller; ``before`` may set a variable they use). None for a
        file the node does not have; at most ``limit`` bytes of each."""
        script = (
            f'{before}\nfor f in {" ".join(words)}; do if [ -f "$f" ]; then echo y; '
            f'head -c {limit} "$f" | base64 -w0; echo; else printf "n\\n\\n"; fi; done'
        )
        lines = self.run(script, "reading the config files").split("\n")
        return [
            base64.b64decode(lines[2 * i + 1]) if lines[2 * i] == "y" else None
            for i in range(len(words))
        ]

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

    def install(self, release: Release, only: tuple[str, ...] = ()) -> None:
        """Put the release's files in place and record it, all or nothing.

        Every file is first copied next to its target under a hidden name; only
        when all copies exist are they renamed over the targets, the WAR
        last, so a hot-deploying Jetty never starts it with the old config.
        A copy, not a link: the fresh mtime makes Jetty unpack the WAR again
        even when an older release comes back (a kept file's old mtime would not).
        ``only`` limits it to some of the files (``logback``: `deploy logging`).
        """
        c = self.config
        files = (
            ("config", release.config, c.config_path),
            ("jettyrc", release.jettyrc, c.jettyrc_path),
            ("logback", release.logback, c.logback_path),
            ("war", release.war, c.war_path),
        )
        staged = [
            (sha, target, _hidden_beside(target))
            for kind, sha, target in files
            if sha and target and kind in (only or (kind,))
        ]
        lines = _placing(c.releases_dir, staged) + self._record_lines(release)
        self.run("\n".join(lines), "installing the release")

    def place(self, sha256: str, target: str) -> None:
        """Put one staged file at ``target`` (renamed into place), recording no release:
        a node that runs none this tool deployed still takes a logback.xml."""
        staged = [(sha256, target, _hidden_beside(target))]
        self.run("\n".join(_placing(self.config.releases_dir, staged)), f"placing {target}")

    def record(self, release: Release) -> None:
        """Note ``release`` as what the instance runs (parallel: once it is verified)."""
        lines = [f"d={sh_path(self.config.releases_dir)}", *self._record_lines(release)]
        self.run("set -e\n" + "\n".join(lines), "recording the release")

    def _record_lines(self, release: Release) -> list[str]:
        """Shell lines (``$d`` is the releases directory) that make ``release`` current."""
        record = shlex.quote(release.to_json())
        current = _current_file(self.config.instance)
        return [
            f'printf "%s\\n" {record} > "$d/{current}.new"',
            f'mv -f "$d/{current}.new" "$d/{current}"',
            f'printf "%s\\n" {record} >> "$d/releases.log"',
        ]

    def restart(self, holder: str, run: str, stale: str = "") -> tuple[Claim | None, float]:
        """Claim the node's restart lock, then run the ``.config`` restart command.

        Returns (the claim in the way, when another holds; the node's uptime when
        ours was taken). ``stale`` is a claim judged over, to be taken over.
        """
        c = self.config
        script = restartclaim.claim_and_restart(
            c.releases_dir, holder, 2 * c.ready_timeout, stale, c.restart
        )
        result = self._exec(script, "the restart command", timeout=c.ready_timeout)
        blocked, at = restartclaim.parse_outcome(str(result.stdout))
        if blocked is None and result.exited != 0:
            raise NodeError(
                f"{self.host}: the restart command failed (exit {result.exited}): {_tail(result)}"
            )
        return blocked, at or 0.0

    def release_restart(self, run: str) -> None:
        """Remove this run's restart claim: the new JVM is verified, or has failed."""
        self.run(
            restartclaim.release_script(self.config.releases_dir, run), "releasing the restart"
        )

    def clear_claim(self, line: str) -> None:
        """Remove a restart claim judged over, unless it changed meanwhile."""
        self.run(
            restartclaim.clear_script(self.config.releases_dir, line), "clearing a restart claim"
        )

    def port_report(self) -> PortReport:
        """Who listens on the status port, and the node's clocks."""
        return self._port_report("", "reading who holds the status port")[1]

    def restart_claim(self) -> tuple[Claim | None, PortReport]:
        """The node's restart claim (if any) and who holds the status port, in one round trip."""
        return self._port_report(
            restartclaim.read_script(self.config.releases_dir), "reading the restart claim"
        )

    def _port_report(self, before: str, what: str) -> tuple[Claim | None, PortReport]:
        c = self.config
        port = url_port(c.url)
        text = self.run(f"{before}\n{portowner.script(port, c.pid_file)}", what)
        claim = next(
            (Claim.parse(line[6:]) for line in text.splitlines() if line.startswith("claim ")),
            None,
        )
        return claim, portowner.parse(text, port, c.pid_file, _url_host(c.url))

    def prune(self, inventory: Inventory, keep: frozenset[str]) -> None:
        """Delete blobs no kept release refers to."""
        doomed = sorted(inventory.blobs - keep)
        if not doomed:
            return
        d = sh_path(self.config.releases_dir)
        names = " ".join(shlex.quote(name) for name in doomed)
        self.run(f"cd {d}/blobs && rm -f -- {names}", "removing old releases")


def _placing(releases_dir: str, staged: list[tuple[str, str, str]]) -> list[str]:
    """Shell lines that copy each (blob, target, hidden temp) beside its target, then
    rename them all over their targets; a failure removes the copies."""
    temps = " ".join(sh_path(tmp) for _, _, tmp in staged)
    lines = ["set -e", f"d={sh_path(releases_dir)}", f"trap {shlex.quote(f'rm -f {temps}')} EXIT"]
    for sha, target, tmp in staged:
        lines.append(f"mkdir -p {sh_path(_parent(target))}")
        lines.append(f'cp "$d/blobs/"{shlex.quote(sha)} {sh_path(tmp)}')
    return lines + [f"mv -f {sh_path(tmp)} {sh_path(target)}" for _, target, tmp in staged]


def _current_file(instance: str) -> str:
    """Which release each instance runs: ``current``, or ``current.NAME`` (a safe name)."""
    return f"current.{instance}" if instance else "current"


def _tail(result: Any) -> str:
    return str(result.stderr.strip() or result.stdout.strip())[-400:]


def _url_host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or ""


def _parent(target: str) -> str:
    head, slash, _ = target.rpartition("/")
    return head or ("/" if slash else ".")


def _hidden_beside(target: str) -> str:
    """A hidden name in the target's directory: same filesystem, so the rename is atomic."""
    name = target.rpartition("/")[2]
    return f"{_parent(target).rstrip('/')}/.{name}.deploy-new"


def _parse_inventory(text: str) -> Inventory:
    fields: dict[str, Any] = {"home": "", "free": 0, "blobs": set(), "current": None, "claim": None}
    installed: list[Release] = []
    held: list[Release] = []
    files: list[tuple[str, str]] = []
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word == "blob":
            fields["blobs"].add(rest)
        elif word == "current":
            fields["current"] = Release.from_json(rest)
        elif word == "release" and (release := Release.from_json(rest)) is not None:
            installed.append(release)
        elif word == "claim":
            fields["claim"] = Claim.parse(rest)
        elif word == "held" and (release := Release.from_json(rest)) is not None:
            held.append(release)
        elif word == "file":
            kind, _, sha = rest.partition(" ")
            files.append((kind, sha))
        elif word in ("home", "free"):
            fields[word] = rest
    return Inventory(
        home=fields["home"],
        free_kib=int(fields["free"] or 0),
        blobs=frozenset(fields["blobs"]),
        current=fields["current"],
        installed=tuple(installed),
        claim=fields["claim"],
        held=tuple(held),
        files=tuple(files),
    )


def _connection(config: NodeConfig) -> Connection:
    """A Fabric connection to the node's resolved address (`fabfile.app.sshconfig`), through
    its jump hosts, every one of them checked against ``known_hosts``.

    Fabric reads no ssh_config itself (we resolved it), and its own ProxyJump is not
    used: it would accept any jump host's key."""
    gateway: Connection | bool = False  # False: no gateway, and Fabric looks for none
    for hop in config.jumps:
        gateway = _one(config, hop, gateway)
    assert config.ssh is not None  # `fabfile.app.config` resolves every node
    return _one(config, config.ssh, gateway, own_key=True)


def _one(
    config: NodeConfig, ssh: Resolved, gateway: Connection | bool, own_key: bool = False
) -> Connection:
    """One SSH hop: ``.config``'s identity_file first (for the node itself), then
    ssh_config's IdentityFile, each host key checked."""
    keys = [str(Path(config.identity_file).expanduser())] if config.identity_file else []
    kwargs: dict[str, Any] = {
        "banner_timeout": config.connect_timeout,
        "auth_timeout": config.connect_timeout,
        "channel_timeout": config.connect_timeout,
        "key_filename": keys + list(ssh.identity_files),
    }
    if config.identity_file and own_key:
        kwargs.update(look_for_keys=False, allow_agent=False)
    connection = Connection(
        ssh.address,
        user=ssh.user,
        port=ssh.port,
        connect_kwargs=kwargs,
        config=Config(overrides={"load_ssh_configs": False}),
        connect_timeout=config.connect_timeout,
        gateway=gateway,
    )
    known = Path(config.known_hosts).expanduser()
    hostkeys.load(connection.client, known)
    policy: paramiko.MissingHostKeyPolicy = paramiko.RejectPolicy()
    if config.accept_unknown_hosts:
        policy = hostkeys.TrustOnFirstUse(known)
    connection.client.set_missing_host_key_policy(policy)
    return connection


def _failed_hop(config: NodeConfig, connection: Connection) -> Resolved | None:
    """The jump host the connection did not get through (None: the node itself)."""
    chain = []
    hop: Any = connection.gateway
    while isinstance(hop, Connection):
        chain.append(hop)
        hop = hop.gateway
    for index, hop in enumerate(reversed(chain)):  # in dialling order
        transport = hop.client.get_transport()  # set before the key check and the login
        if transport is None or not transport.is_authenticated():
            return config.jumps[index]
    return None


def _close(connection: Connection) -> None:
    """The connection and its jump hosts (Fabric closes only the first)."""
    while isinstance(connection, Connection):
        connection.close()
        connection = connection.gateway


def _connect_reason(config: NodeConfig, error: Exception, hop: Resolved | None = None) -> str:
    """Turn paramiko's and the socket's exceptions into what to do (``hop``: the jump
    host that failed, None for the node itself)."""
    known = config.known_hosts
    via = f"jump host {hop.address}:{hop.port}: " if hop is not None else ""
    if isinstance(error, paramiko.BadHostKeyException):
        address, port = (hop.address, hop.port) if hop else (config.address, config.port)
        name = address if port == 22 else f"[{address}]:{port}"  # as known_hosts names it
        return (
            f"{via}HOST KEY CHANGED for {name} (the server's key is not the one in {known}); "
            f"this may be an attack. If the host was rebuilt, remove the old key: ssh-keygen "
            f"-R {shlex.quote(name)} -f {shlex.quote(known)}"
        )
    if isinstance(error, socket.gaierror):
        name = hop.address if hop is not None else config.address or config.host
        told = config.ssh.describe(config.host) if config.ssh else ""
        return f"{via}{name!r} resolves to no address ({error.strerror}); {told}"
    if isinstance(error, paramiko.PasswordRequiredException) or "encrypted" in str(error):
        return (
            f"the identity_file {config.identity_file} is passphrase-protected; load it into "
            "ssh-agent and leave identity_file empty"
        )
    if isinstance(error, paramiko.AuthenticationException):
        user = hop.user if hop is not None else config.user
        return f"{via}SSH login as {user!r} refused; check user and identity_file"
    if isinstance(error, paramiko.SSHException) and "not found in known_hosts" in str(error):
        return (
            f"{via}unknown host key (not in {known}); add it with ssh-keyscan after checking "
            "its fingerprint, or set accept_unknown_hosts = yes in .config"
        )
    if isinstance(error, paramiko.ChannelException) and hop is None and config.jumps:
        told = config.ssh.describe(config.host) if config.ssh else ""
        return (
            f"the jump host {config.jumps[-1].address} could not reach {config.address}:"
            f"{config.port} ({error.text}); {told}"
        )
    where = f"sshd at {config.address or config.host}:{config.port}"
    if hop is not None:
        where = f"jump host sshd at {hop.address}:{hop.port}"
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        reasons = {type(e) for e in error.errors.values()}
        if reasons == {ConnectionRefusedError}:
            return f"{where} refused the connection: is sshd running there, on that port?"
        detail = "; ".join(sorted({e.strerror or str(e) for e in error.errors.values()}))
        return f"cannot reach {where} ({detail})"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"{where} did not accept the connection within {config.connect_timeout:g} s"
    if isinstance(error, paramiko.SSHException) and (
        "banner" in str(error) or "No existing session" in str(error)
    ):
        return (
            f"{where} accepted the connection but sent no SSH banner within "
            f"{config.connect_timeout:g} s: is it sshd, and is it overloaded?"
        )
    if isinstance(error, (OSError, paramiko.SSHException, EOFError)):
        return f"{where}: SSH failed ({error})"
    return f"SSH connect failed ({type(error).__name__}: {error})"
