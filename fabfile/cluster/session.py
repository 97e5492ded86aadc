"""An SSH session to one node: one connection, opened once and reused, every command
and upload bounded (`fabfile.cluster.deadline`), a silent node named with its phase.

What a deploy does over it (install, restart, claims, marks, pruning) is `Node`'s
(`fabfile.cluster.node`); the connection itself is `fabfile.cluster.connection`'s.
"""

from __future__ import annotations

import base64
import contextlib
import shlex
import threading
import time
import uuid
from pathlib import Path

import paramiko
from fabric import Connection

from ..app.config import NodeConfig
from ..errors import NodeError
from . import (
    become,
    connection,
    deadline,
    inflight,
    tunnel,
)
from .holdings import Holdings
from .layout import Layout

TRANSFER = "command_timeout + its size at min_transfer_kib"  # a transfer's deadline
_CHANNEL_TIMEOUT = "Timeout opening channel"  # paramiko: no answer within channel_timeout


class Session:
    """One SSH connection to one node, opened once and reused for every step: running
    bounded commands, reading what the node holds, sending files (`Node` adds what a
    deploy does with them)."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.host = config.host
        self._connection: Connection | None = None
        self.home = ""
        # names this command's temporary files on the node, so no other run touches them
        # (a rollout sets it to its run id, which its restart claims carry too)
        self.run_id = uuid.uuid4().hex
        self.holder = ""  # who runs it and which run, as a restart claim names them
        self.silent_while = ""  # what it was doing when it went silent in this run, if it did
        self._opening = threading.Lock()  # HTTP through SSH may open it from another thread
        tunnel.carry(config, self)

    @property
    def layout(self) -> Layout:
        """Where each thing is under the node's releases directory."""
        return Layout.of(self.config)

    # -- connection ---------------------------------------------------------

    def open(self) -> None:
        """Connect, checking the host key (or take the connection HTTP through SSH already
        made to the node); raise `NodeError` saying why not."""
        with self._opening:
            if self._connection is None:
                self._connection = tunnel.adopt(self.config) or connection.dial(self.config)
                tunnel.carry(self.config, self)

    def transport(self) -> paramiko.Transport:
        """The open connection's transport, dialled if need be (HTTP through SSH)."""
        self.open()
        held = self._connection
        transport = held.transport if held is not None else None
        if transport is None or not transport.is_active():
            raise NodeError(f"{self.host}: the SSH connection closed")
        return transport

    def close(self) -> None:
        """Done with the node: the connection closes, unless HTTP through SSH may still
        be using it (then it is kept until the command ends, `tunnel.keep`)."""
        tunnel.drop(self.config, self)
        held, self._connection = self._connection, None
        if held is not None and not tunnel.keep(self.config, held):
            connection.close(held)

    def sever(self) -> None:
        """Drop the connection without a word to the node (it may be silent); the next
        step dials again. Safe from another thread (`fabfile.cluster.inflight`)."""
        held, self._connection = self._connection, None
        if held is not None:
            connection.sever(held)

    def run(self, script: str, what: str, timeout: float | None = None) -> str:
        """Run ``script`` and return stdout; a non-zero exit is a `NodeError` about ``what``."""
        result = self._exec(script, what, timeout)
        if result.exited != 0:
            raise NodeError(f"{self.host}: {what} failed (exit {result.exited}): {tail_of(result)}")
        return result.stdout

    def _exec(
        self, script: str, what: str, timeout: float | None = None, stdin: bytes = b""
    ) -> deadline.Ran:
        """Run ``script`` within ``timeout`` (``command_timeout`` when None), ``stdin`` on its
        input (file contents never go on a command line); return its exit code and output
        whatever the code. A node silent past it fails, its
        connection cut; so does one interrupted (Ctrl-C, or its fan-out stopped)."""
        limit = timeout or self.config.command_timeout
        with inflight.holding(self.sever):
            self.open()
            assert self._connection is not None
            try:
                return deadline.execute(self._connection, script, limit, self.sever, stdin)
            except deadline.Silent:
                self.sever()
                raise self.silent(what, f"{limit:g} s ({self._bound(timeout)})") from None
            except (OSError, EOFError, paramiko.SSHException, deadline.Lost) as error:
                self.sever()
                raise self.lost(what, error) from None
            except BaseException:  # a signal: the command may be half-way, the link too
                self.sever()
                raise

    def _bound(self, timeout: float | None) -> str:
        """The setting a command's deadline comes from, for the message."""
        if timeout is None:
            return "command_timeout"
        return "ready_timeout" if timeout == self.config.ready_timeout else TRANSFER

    def silent(self, what: str, within: str) -> NodeError:
        """The error of a node that did not answer in time: what it was doing, the bound."""
        self.silent_while = what
        return NodeError(
            f"{self.host}: no answer within {within} while {what}; the node or the network "
            "to it went silent. Check it (up? disk or network hung?), then run the same "
            "command again"
        )

    def lost(self, what: str, error: BaseException) -> NodeError:
        """The error of a connection that failed or died under a step. A channel the
        node did not open within connect_timeout, or a connection that had heard
        nothing for the keepalive bound, is a node gone silent."""
        if isinstance(error, paramiko.SSHException) and _CHANNEL_TIMEOUT in str(error):
            opening = f"{self.config.connect_timeout:g} s (connect_timeout, opening a channel)"
            return self.silent(what, opening)
        bound = connection.DEAD_AFTER * self.config.ssh_keepalive
        if bound and isinstance(error, deadline.Lost) and error.quiet >= bound - deadline.TICK:
            keepalive = f"{self.config.ssh_keepalive:g}"
            return self.silent(
                what,
                f"{error.quiet:.0f} s (its connection dropped as dead: nothing acknowledged "
                f"for {connection.DEAD_AFTER} x ssh_keepalive = {connection.DEAD_AFTER} x "
                f"{keepalive} s)",
            )
        return NodeError(f"{self.host}: {what}: connection lost ({deadline.describe(error)})")

    # -- what the node holds ------------------------------------------------

    def holdings(self, tidy: bool = True) -> Holdings:
        """HOME, free space, blobs, releases and the installed files' checksums, in one
        command. ``tidy`` also creates the releases directory and removes partial
        uploads (a dry run changes nothing)."""
        script = Holdings.script(self.config, tidy)
        holdings = Holdings.parse(self.run(script, "reading the releases directory"))
        self.home = holdings.home
        return holdings

    def read_files(
        self, words: list[str], before: str = "", limit: int = 1 << 20
    ) -> list[bytes | None]:
        """The node's files, in one round trip: each of ``words`` is one shell word naming a
        file (quoted by the caller; ``before`` may set a variable they use). None for a
        file the node does not have; at most ``limit`` bytes of each. Read as
        ``become_user``, who may be the only one allowed to (a ``chmod 600``)."""
        head = f"{become.prefix(self.config.become_user)}head"
        script = (
            f'{before}\nfor f in {" ".join(words)}; do if [ -f "$f" ]; then echo y; '
            f'{head} -c {limit} "$f" | base64 -w0; echo; else printf "n\\n\\n"; fi; done'
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

    def upload(self, local: Path, sha256: str, check: bool = True) -> int:
        """Send ``local`` as ``blobs/SHA256``, verified on the node; return bytes sent.
        Without ``check`` it stays this run's ``.part`` file, for the next script to check
        as it copies it (`placement.put`, with its part), then rename: one hash of it and
        one command less. A changed part is never renamed."""
        part = self.send_part(local, sha256)
        if check:
            self.verify_part(part, self.absolute(self.layout.blob(sha256)), sha256, local.name)
        return local.stat().st_size

    def send_part(self, local: Path, sha256: str) -> str:
        """Send ``local`` as this run's part file of blob ``sha256``; its absolute path.
        Bounded by `transfer_seconds`: a node silent past it fails, its partial file
        left for the next run's pre-flight to remove."""
        part = self.absolute(self.layout.part(sha256, self.run_id))
        size = local.stat().st_size
        limit = self.transfer_seconds(size)
        with inflight.holding(self.sever):
            self.open()
            assert self._connection is not None
            started = time.monotonic()
            with deadline.watchdog(limit, self.sever) as cut:
                try:
                    self._connection.put(str(local), part)
                except Exception as error:
                    if cut.is_set():
                        what = f"uploading {local.name} ({size // 1024} KiB)"
                        raise self.silent(what, f"{limit:g} s ({TRANSFER})") from None
                    if not isinstance(error, (OSError, EOFError, paramiko.SSHException)):
                        raise
                    self._failed_upload(local, part, error, time.monotonic() - started)
        return part

    def transfer_seconds(self, size: int) -> float:
        """How long sending (or reading) ``size`` bytes may take on this node."""
        c = self.config
        return deadline.transfer_seconds(size, c.command_timeout, c.min_transfer_kib)

    def _failed_upload(self, local: Path, part: str, error: BaseException, took: float) -> None:
        """Say why an upload failed; remove its partial file unless the link is gone
        (the next run's pre-flight removes it then)."""
        transport = getattr(self._connection, "transport", None)
        if transport is None or not transport.is_active() or _CHANNEL_TIMEOUT in str(error):
            self.sever()
            why = deadline.describe(error)
            lost = error if _CHANNEL_TIMEOUT in why else deadline.Lost(why, took)
            raise self.lost(f"uploading {local.name}", lost) from None
        free = self._remove_partial(part, self.absolute(self.layout.blobs))
        raise NodeError(
            f"{self.host}: upload of {local.name} failed ({error}); the partial file was "
            f"removed; {free} KiB free in {self.config.releases_dir}"
        ) from None

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
        # If this fails too, the next reading of the holdings removes *.part leftovers.
        with contextlib.suppress(NodeError):
            return self.run(script, "removing a partial upload").strip() or "?"
        return "?"

    def beside(self, script: str, what: str, timeout: float) -> str:
        """Run a short ``script`` over the connection already open, beside the run's own
        commands, and never dial one: the deploy lock's heartbeat adds no login and never
        races the run's own reconnect. `NodeError` when the connection is not open, the
        script exits non-zero or it outlasts ``timeout``."""
        connection = self._connection
        transport = connection.transport if connection is not None else None
        if transport is None or not transport.is_active():
            raise NodeError(f"{self.host}: {what}: not connected")
        try:
            channel = transport.open_session(timeout=timeout)
            with contextlib.closing(channel):
                channel.settimeout(timeout)
                channel.exec_command(script)
                stdout = b"".join(iter(lambda: channel.recv(4096), b""))
                exited = channel.exit_status if channel.status_event.wait(timeout) else None
        except (OSError, EOFError, paramiko.SSHException) as error:
            raise NodeError(f"{self.host}: {what}: {error or 'no answer'}") from None
        if exited != 0:
            raise NodeError(f"{self.host}: {what} failed (exit {exited})")
        return stdout.decode(errors="replace")


def tail_of(result: deadline.Ran) -> str:
    return (result.stderr.strip() or result.stdout.strip())[-400:]
