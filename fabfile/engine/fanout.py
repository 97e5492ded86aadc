"""Work on many nodes at once, with Ctrl-C held until every call has returned."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
WORKERS = 32


def each(work: Callable[[T], R], targets: Sequence[T]) -> list[R]:
    """``work`` on every target at once. A Ctrl-C meanwhile takes effect once every call
    has returned (each is bounded by its own timeouts): a call cannot be stopped in its
    thread, and one left running (an upload) would touch the node after the rollout
    recorded its end, and under the feet of the next run."""
    if not targets:
        return []
    with _ctrl_c_held(), ThreadPoolExecutor(max_workers=min(WORKERS, len(targets))) as pool:
        return list(pool.map(work, targets))


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) until the block is over, then raise KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):  # ignored, or not Python's to change
        yield
        return
    pressed: list[int] = []

    def hold(number: int, frame: object) -> None:
        if pressed:  # pressed again: the user will not wait
            raise KeyboardInterrupt
        pressed.append(number)
        sys.stderr.write("Ctrl-C: stopping once the calls in flight return (again: now)\n")

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt
