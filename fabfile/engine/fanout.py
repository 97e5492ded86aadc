"""Work on many nodes at once; an interruption cuts the calls in flight short.

Each target's work runs in a thread of one `fabfile.cluster.inflight.Flight`. Ctrl-C,
SIGTERM or SIGHUP reaches the main thread, where it waits here; it stops the flight:
the SSH connections the threads hold are closed, so their calls fail at once, their
waits end, and each thread cleans up as its strategy does after Ctrl-C (a node caught
mid-restart left drained, say). The main thread gives them `GRACE` seconds for that,
then raises the interruption, with the notes they added, whether or not all of them
have ended: one still in an HTTP request ends at its timeout, and can no longer reach
a node over SSH. A second Ctrl-C cuts the grace short.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from ..cluster import inflight

T = TypeVar("T")
R = TypeVar("R")
WORKERS = 32
GRACE = 1.0  # seconds the threads get to clean up once the run is interrupted
_TICK = 0.2
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def each(work: Callable[[T], R], targets: Sequence[T]) -> list[R]:
    """``work`` on every target at once (at most `WORKERS` threads); the results in
    the targets' order, or the first target's error. An interruption meanwhile is
    raised within about `GRACE` seconds (see the module's docstring)."""
    if not targets:
        return []
    flight = inflight.Flight()
    pool = _Pool(work, targets, flight)
    try:
        pool.start()
        pool.join()
    except KeyboardInterrupt as interrupt:
        flight.stop()
        pool.join(GRACE)
        for note in pool.notes():
            interrupt.add_note(note)
        raise
    return pool.results()


class _Pool(Generic[T, R]):
    """Daemon threads taking the targets in turn: a thread abandoned after the grace
    does not hold up the end of the process."""

    def __init__(self, work: Callable[[T], R], targets: Sequence[T], flight: inflight.Flight):
        self.work, self.targets, self.flight = work, targets, flight
        self._results: dict[int, R] = {}
        self._errors: dict[int, BaseException] = {}
        self._lock = threading.Lock()
        self._next = 0
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Every thread, with Ctrl-C, SIGTERM and SIGHUP held until all have started (and
        blocked in them for good: the kernel then delivers a signal to the main thread,
        which waits for it)."""
        with _held():
            for _ in range(min(WORKERS, len(self.targets))):
                thread = threading.Thread(target=self._run, daemon=True)
                self._threads.append(thread)
                thread.start()

    def join(self, seconds: float = math.inf) -> None:
        """Until every thread has ended, or ``seconds`` have passed. In short waits: a
        signal handled late (delivered to another thread) is raised within one."""
        deadline = time.monotonic() + seconds
        for thread in self._threads:
            while thread.is_alive() and (left := deadline - time.monotonic()) > 0:
                thread.join(min(_TICK, left))

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= len(self.targets) or self.flight.stopped:
                return None
            self._next += 1
            return self._next - 1

    def _run(self) -> None:
        with inflight.joined(self.flight):
            while (index := self._take()) is not None:
                try:
                    self._results[index] = self.work(self.targets[index])
                except BaseException as error:  # raised in the caller's thread
                    self._errors[index] = error

    def results(self) -> list[R]:
        """Every result in order, or the error of the first target that raised one."""
        if self._errors:
            raise self._errors[min(self._errors)]
        return [self._results[index] for index in range(len(self.targets))]

    def notes(self) -> list[str]:
        """What the threads' clean-up said (a node left drained...), once each."""
        with self._lock:
            errors = [self._errors[index] for index in sorted(self._errors)]
        said = [note for error in errors for note in getattr(error, "__notes__", ())]
        return list(dict.fromkeys(said))


@contextlib.contextmanager
def _held() -> Iterator[None]:
    """Signals blocked in the calling (main) thread while the block runs; one that
    came meanwhile is delivered, and raised, right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
