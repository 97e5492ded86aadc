"""Calls on other threads that an interruption cuts short.

A signal (Ctrl-C, SIGTERM, SIGHUP) reaches only the main thread. Work done on many
nodes at once (`fabfile.engine.fanout`) runs in threads that each belong to one
`Flight`; when the run is interrupted, the main thread stops the flight: every SSH
connection its threads hold open (`holding`) is closed at once, so a call in flight
fails at once instead of at its deadline, and every wait (`pause`) and every new
call raises `Stopped`. The main thread belongs to no flight: the signal stops it
where it is.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator


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
