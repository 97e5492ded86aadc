"""SIGTERM and SIGHUP stop a run as Ctrl-C does: the same clean-up, a record, an exit code.

A dropped SSH session to the coordinator sends SIGHUP; ``kill``, ``timeout`` and a
cancelled CI job send SIGTERM. Left to their default, either ends the process where it
stands: no history record, a node left drained and nothing said. While `handled` is in
force (the CLI's boundary, around every command), each raises `Signalled` in the main
thread instead, a `KeyboardInterrupt`, so every ``except KeyboardInterrupt`` that
cleans up after Ctrl-C cleans up after them too. The interruption then names its
signal (`cause`) and the command exits with that signal's code (`exit_code`): 130 for
Ctrl-C, 143 for SIGTERM, 129 for SIGHUP, as a shell reports a process the signal ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from ..errors import ExitCode, Interrupted

HANDLED = (signal.SIGTERM, signal.SIGHUP)
_CODES = {
    signal.SIGINT: ExitCode.INTERRUPTED,
    signal.SIGTERM: ExitCode.TERMINATED,
    signal.SIGHUP: ExitCode.HANGUP,
}


class Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread where Ctrl-C raises KeyboardInterrupt."""

    def __init__(self, number: int) -> None:
        super().__init__(signal.Signals(number).name)
        self.number = signal.Signals(number)


def cause(interrupt: BaseException) -> str:
    """What stopped the run, in the words of the message: ``SIGTERM``, ``SIGHUP``, ``Ctrl-C``."""
    if isinstance(interrupt, Signalled):
        return interrupt.number.name
    return "Ctrl-C"


def exit_code(interrupt: BaseException) -> ExitCode:
    """The exit code for an interruption: 128 + the signal's number."""
    number = interrupt.number if isinstance(interrupt, Signalled) else signal.SIGINT
    return _CODES[number]


def interrupted(message: str, interrupt: BaseException) -> Interrupted:
    """The error the user reads after ``interrupt``, with its signal's exit code."""
    return Interrupted(message, exit_code(interrupt))


def _raise(number: int, frame: FrameType | None) -> None:
    if number == signal.SIGHUP:
        _silence_a_lost_terminal()
    raise Signalled(number)


def _silence_a_lost_terminal() -> None:
    """After SIGHUP, stdout and stderr may be a terminal that is gone (every write fails
    with EIO): point them at /dev/null, so the clean-up, the record and the exit code
    are not lost to a failed write of the last progress frame. A live one is kept."""
    for fd in (1, 2):
        try:
            os.write(fd, b"")
        except OSError:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """SIGTERM and SIGHUP raise `Signalled` while the block runs; the handlers that
    were there before are put back after. A signal set to be ignored stays ignored
    (``nohup deploy ...`` outlives its terminal), and so does one that is not Python's
    to change; nor can a thread other than the main one change any."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in HANDLED}
    mine = [n for n, handler in previous.items() if handler not in (signal.SIG_IGN, None)]
    for number in mine:
        signal.signal(number, _raise)
    try:
        yield
    finally:
        for number in mine:
            signal.signal(number, previous[number])
