"""Calls on other threads that an interruption cuts short.

A signal (Ctrl-C, SIGTERM, SIGHUP) reaches only the main thread. Work done on many
nodes at once (`each`; the rollout's phases through `fabfile.engine.fanout`) runs in
threads that each belong to one `Flight`; when the run is interrupted, the main thread
stops the flight: every SSH connection its threads hold open (`holding`) is closed at
once, so a call in flight fails at once instead of at its deadline, and every wait
(`pause`) and every new call raises `Stopped`. The main thread belongs to no flight:
the signal stops it where it is.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
# Nodes worked on at once. Not sshd's MaxStartups (10:30:100 by default): it counts the
# logins not yet authenticated on one sshd, and each node has its own, which sees one
# login from us; nodes behind a jump host share one connection to it (`jumps`), whose
# channels are not logins. What bounds a login here is this machine's CPU: about 9 ms
# of it each (key exchange and signature, under the GIL; bench/scale.py's sandbox), so
# about 110 logins a second, which 32 at a time reach while each waits up to ~0.3 s on
# the network; measured on 100 light nodes, 16, 32 and 100 at a time took the same
# 1.7-2.1 s. More threads would only add threads.
WORKERS = 32
GRACE = 1.0  # seconds the threads get to clean up once the run is interrupted
_TICK = 0.2
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """Raised in a fan-out thread once the run was interrupted: the strategy cleans up
    after it as after Ctrl-C, and the thread ends."""

    def __init__(self) -> None:
        super().__init__("stopped: the run was interrupted")


class Flight:
    """The threads of one fan-out, and the connections they hold open."""

    def __init__(self) -> None:
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._open: dict[int, Callable[[], None]] = {}
        self._keys = itertools.count()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        """Stop every thread of the flight: close what they hold, end their waits."""
        with self._lock:
            self._stopped.set()
            closers = list(self._open.values())
        for close in closers:
            with contextlib.suppress(Exception):  # it is being abandoned: close what can be
                close()

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds``; True at once if the flight is stopped meanwhile."""
        return self._stopped.wait(seconds)

    def hold(self, close: Callable[[], None]) -> int:
        """Register ``close`` for `stop`; `Stopped` if the flight is already stopped."""
        with self._lock:
            if self._stopped.is_set():
                raise Stopped
            key = next(self._keys)
            self._open[key] = close
            return key

    def release(self, key: int) -> None:
        with self._lock:
            self._open.pop(key, None)


_local = threading.local()


@contextlib.contextmanager
def joined(flight: Flight) -> Iterator[None]:
    """The calling thread's work belongs to ``flight`` while the block runs."""
    _local.flight = flight
    try:
        yield
    finally:
        _local.flight = None


def current() -> Flight | None:
    """The calling thread's flight (None in the main thread)."""
    flight: Flight | None = getattr(_local, "flight", None)
    return flight


def check() -> None:
    """`Stopped` if the calling thread's flight was stopped."""
    flight = current()
    if flight is not None and flight.stopped:
        raise Stopped


def pause(seconds: float) -> None:
    """Sleep; in a fan-out thread, end early with `Stopped` when the run is interrupted."""
    flight = current()
    if flight is None:
        time.sleep(seconds)
    elif flight.wait(seconds):
        raise Stopped


@contextlib.contextmanager
def holding(close: Callable[[], None]) -> Iterator[None]:
    """While the block runs, stopping the thread's flight calls ``close`` (which cuts
    the connection the block uses); an error the cut caused is raised as `Stopped`,
    so it is not mistaken for the node's failure."""
    flight = current()
    if flight is None:
        yield
        return
    key = flight.hold(close)
    try:
        yield
    except Exception:
        if flight.stopped:
            raise Stopped from None
        raise
    finally:
        flight.release(key)


def each(
    work: Callable[[T], R], targets: Sequence[T], workers: int = WORKERS, grace: float = GRACE
) -> list[R]:
    """``work`` on every target at once, in threads of one `Flight` (at most ``workers``);
    the results in the targets' order, or the first target's error. An interruption
    (raised in the main thread, which waits here) stops the flight, gives its threads
    ``grace`` seconds to clean up, and is raised with the notes they added."""
    if not targets:
        return []
    flight = Flight()
    pool = _Pool(work, targets, flight, workers)
    try:
        pool.start()
        pool.join()
    except KeyboardInterrupt as interrupt:
        flight.stop()
        pool.join(grace)
        for note in pool.notes():
            interrupt.add_note(note)
        raise
    return pool.results()


class _Pool(Generic[T, R]):
    """Daemon threads taking the targets in turn: a thread abandoned after the grace
    does not hold up the end of the process."""

    def __init__(
        self, work: Callable[[T], R], targets: Sequence[T], flight: Flight, workers: int
    ) -> None:
        self.work, self.targets, self.flight, self.workers = work, targets, flight, workers
        self._results: dict[int, R] = {}
        self._errors: dict[int, BaseException] = {}
        self._lock = threading.Lock()
        self._next = 0
        self._done: list[threading.Event] = []

    def start(self) -> None:
        """Every thread, with Ctrl-C, SIGTERM and SIGHUP held until all have started (and
        blocked in them for good: the kernel then delivers a signal to the main thread,
        which waits for it)."""
        with _held():
            for _ in range(min(self.workers, len(self.targets))):
                done = threading.Event()
                self._done.append(done)
                threading.Thread(target=self._run, args=(done,), daemon=True).start()

    def join(self, seconds: float = math.inf) -> None:
        """Until every thread has ended, or ``seconds`` have passed. In short waits: a
        signal handled late (delivered to another thread) is raised within one.

        Each thread's own `done` event, not `Thread.join`: a join that a signal
        interrupts marks its thread as ended while it still runs (CPython up to 3.12),
        and the grace would not wait for that thread's clean-up and its notes."""
        deadline = time.monotonic() + seconds
        for done in self._done:
            while not done.is_set() and (left := deadline - time.monotonic()) > 0:
                done.wait(min(_TICK, left))

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= len(self.targets) or self.flight.stopped:
                return None
            self._next += 1
            return self._next - 1

    def _run(self, done: threading.Event) -> None:
        try:
            with joined(self.flight):
                while (index := self._take()) is not None:
                    try:
                        result = self.work(self.targets[index])
                    except BaseException as error:  # raised in the caller's thread
                        with self._lock:
                            self._errors[index] = error
                    else:
                        with self._lock:
                            self._results[index] = result
        finally:
            done.set()

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
