"""Every step on a node bounded in time: a command by ``command_timeout``, a transfer by
a deadline that grows with its bytes.

A node that goes silent (a network partition, a hung disk, a frozen host) answers
nothing and refuses nothing: without a deadline a call on it waits for good, with
the lock held and a node drained. `execute` runs a command on its own channel and
waits for it in short ticks, so it gives up at its deadline (`Silent`) and a Ctrl-C,
or a stopped fan-out (`fabfile.cluster.inflight`), ends the wait at once; `watchdog`
bounds a call that cannot be ticked (an SFTP upload) by cutting its connection. The
connection itself is kept alive and declared dead by `fabfile.cluster.connection`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import inflight

TICK = 0.2  # how often a wait looks at its deadline (a signal ends it at once)
_CHUNK = 32768


@dataclasses.dataclass(frozen=True)
class Ran:
    """A command's exit code and output."""

    exited: int
    stdout: str
    stderr: str


class Silent(Exception):
    """The node did not finish the step within its deadline: the caller cuts the
    connection (it may be dead) and says so."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g} s")
        self.seconds = seconds


class Lost(Exception):
    """The connection died under the command: closed, reset, or dropped as dead
    because nothing it sent was acknowledged (`fabfile.cluster.connection.keep_alive`).
    ``quiet`` is how long the command had received nothing by then."""

    def __init__(self, why: str, quiet: float) -> None:
        super().__init__(why)
        self.quiet = quiet


def transfer_seconds(size: int, floor: float, min_kib: int) -> float:
    """A transfer's deadline: ``floor`` (``command_timeout``) plus ``size`` bytes at
    ``min_kib`` KiB/s, rounded up to a second: a big WAR gets the time it needs, and a
    stalled one fails."""
    return float(math.ceil(floor + size / (max(1, min_kib) * 1024)))


def execute(
    connection: Any, script: str, seconds: float, cut: Callable[[], None], stdin: bytes = b""
) -> Ran:
    """Run ``script`` over a new channel of ``connection`` (a Fabric `Connection`), with
    ``stdin`` (small: a file's contents, never put on the command line) on its input;
    `Silent` if it has not ended within ``seconds``, `Lost` if the connection died.
    Any other way out (a signal, `Silent`) leaves the channel to the caller, who cuts
    the whole connection: closing a channel sends on a link that may be dead. The
    waits paramiko does not bound (the reply to the command's request) are ended by
    ``cut``, called at the deadline."""
    with watchdog(seconds + TICK, cut) as fired:
        try:
            return _execute(connection, script, seconds, stdin)
        except Exception:
            if fired.is_set():
                raise Silent(seconds) from None
            raise


def _execute(connection: Any, script: str, seconds: float, stdin: bytes) -> Ran:
    deadline = time.monotonic() + seconds
    channel = connection.create_session()
    channel.settimeout(TICK)
    channel.exec_command(script)
    if stdin:
        channel.sendall(stdin)
    channel.shutdown_write()  # the end of stdin: a command that reads on gets EOF
    out, err, heard = _read(channel, deadline, seconds)
    while not channel.exit_status_ready():
        _tick(deadline, seconds)
        channel.status_event.wait(TICK)
    exited = int(channel.recv_exit_status())
    if exited == -1:  # paramiko's "no exit status": the channel closed under us
        transport = connection.transport
        if transport is None or not transport.is_active():
            why = transport.get_exception() if transport is not None else None
            raise Lost(describe(why), time.monotonic() - heard)
    channel.close()
    return Ran(exited, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def describe(error: BaseException | None) -> str:
    """Why a connection died, in words even when the exception has none (EOFError)."""
    if error is None:
        return "the connection closed"
    return str(error) or f"{type(error).__name__}: the connection closed"


def _read(channel: Any, deadline: float, seconds: float) -> tuple[bytes, bytes, float]:
    """The command's stdout and stderr, up to the end of its output, and when the
    last of it came."""
    out, err = bytearray(), bytearray()
    heard = time.monotonic()
    while True:
        _tick(deadline, seconds)
        try:
            chunk: bytes | None = channel.recv(_CHUNK)
        except TimeoutError:  # socket.timeout (its alias): nothing within a tick
            chunk = None
        more = _stderr(channel)
        if chunk or more:
            heard = time.monotonic()
        err += more
        if chunk == b"":  # the end of the output (both streams), or of the channel
            break
        out += chunk or b""
    with contextlib.suppress(TimeoutError):
        while rest := channel.recv_stderr(_CHUNK):
            err += rest
    return bytes(out), bytes(err), heard


def _stderr(channel: Any) -> bytes:
    """What stderr holds now, without waiting (so a full stderr never stalls stdout)."""
    err = bytearray()
    while channel.recv_stderr_ready():
        chunk = channel.recv_stderr(_CHUNK)
        if not chunk:
            break
        err += chunk
    return bytes(err)


def _tick(deadline: float, seconds: float) -> None:
    inflight.check()
    if time.monotonic() >= deadline:
        raise Silent(seconds)


@contextlib.contextmanager
def watchdog(seconds: float, cut: Callable[[], None]) -> Iterator[threading.Event]:
    """Call ``cut`` (closing the connection the block uses) if the block runs longer
    than ``seconds``; the event yielded tells whether it had to."""
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        cut()

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()
