"""How fast a rollout may go: batches, a canary, and how many failures it tolerates.

``batch`` bounds how many nodes a rollout changes at once (out of rotation,
restarting, verifying; blue/green: how many hosts switch together); ``idle_starts``
bounds how many idle colours a blue/green run starts at once (all, by default: an idle
colour takes no traffic, and shares its host only with that host's live colour);
``canary`` nodes go first, alone, and the rest waits for their verdict
(`fabfile.engine.canary`); ``max_failures`` counts failed nodes over the whole run, not
per batch; after every batch, and for ``watch`` seconds after the last, the nodes on
the new release are judged the way the canaries are (``max_error_rate``), and a Failed
verdict does what ``on_failure`` says. The values come from ``.config`` and, for
``batch``, from ``--batch``. Which nodes go together is the engine's
(`fabfile.engine.batches`).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Share:
    """A number of nodes, or a percentage of the nodes a run has (``3`` or ``25%``)."""

    count: int = 0
    percent: float | None = None

    @classmethod
    def parse(cls, text: str, least: int) -> Share:
        """``N`` (a whole number >= ``least``) or ``P%`` (above 0, at most 100)."""
        word = text.strip()
        if word.endswith("%"):
            try:
                percent = float(word[:-1])
            except ValueError:
                raise ValueError("expected a whole number or a percentage like 25%") from None
            if not 0 < percent <= 100:
                raise ValueError("a percentage must be above 0% and at most 100%")
            return cls(percent=percent)
        try:
            count = int(word)
        except ValueError:
            raise ValueError("expected a whole number or a percentage like 25%") from None
        if count < least:
            raise ValueError(f"expected at least {least}, or a percentage like 25%")
        return cls(count=count)

    def of(self, total: int, least: int = 0) -> int:
        """How many nodes this is out of ``total``: a percentage rounds down, to at
        least ``least`` (Ansible's ``serial`` and Kubernetes' ``maxUnavailable`` round
        the same way)."""
        if self.percent is None:
            return self.count
        return max(least, int(total * self.percent / 100))

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)


def parse_batch(text: str) -> Share:
    """``batch``: at least one node at a time."""
    return Share.parse(text, least=1)


ON_FAILURE = ("stop", "ask", "rollback")


def parse_on_failure(text: str) -> str:
    """``on_failure``: what a Failed verdict does."""
    word = text.strip().lower()
    if word not in ON_FAILURE:
        raise ValueError(f"expected one of {', '.join(ON_FAILURE)}")
    return word


def parse_error_rate(text: str) -> float:
    """``max_error_rate``: a share of requests, ``1%`` or ``0.01``, at most 100 %."""
    word = text.strip()
    try:
        value = float(word[:-1]) / 100 if word.endswith("%") else float(word)
    except ValueError:
        raise ValueError("expected a percentage like 1% (or a fraction like 0.01)") from None
    if not 0 <= value <= 1:
        raise ValueError("expected a share from 0% to 100%")
    return value


def parse_slowdown(text: str) -> float:
    """``max_slowdown``: a factor above 1, like 3 (three times slower)."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("expected a factor like 3 (three times slower)") from None
    if not 1 < value < float("inf"):
        raise ValueError("expected a factor above 1, like 3")
    return value


def parse_failures(text: str) -> Share:
    """``max_failures``: 0 stops at the first failure."""
    return Share.parse(text, least=0)


@dataclasses.dataclass(frozen=True)
class Pace:
    """The batch size, the canary and the failure threshold of one run."""

    batch: Share = Share(1)
    canary: int = 0
    canary_wait: float = 60.0
    canary_min_requests: int = 10
    max_failures: Share = Share(0)
    confirm: bool = False  # --confirm: ask the user after the canary instead of waiting
    watch: float = 0.0  # seconds the whole cluster is judged after the last batch
    on_failure: str = "stop"  # what a Failed verdict does: stop, ask or rollback
    max_error_rate: float = 0.01  # a verdict is Failed above this share of failed requests
    max_slowdown: float = 3.0  # ... or answering this many times slower (haproxy's rtime)
    judged: bool = True  # False: a rollback or switch (back to what worked), never judged
    idle_starts: Share = Share(percent=100.0)  # blue/green: idle colours started at once

    def size(self, total: int) -> int:
        return self.batch.of(total, least=1)

    def starts(self, total: int) -> int:
        """How many of ``total`` hosts' idle colours start at once (blue/green)."""
        return self.idle_starts.of(total, least=1)

    def tolerated(self, total: int) -> int:
        """How many nodes may fail before the run stops (it stops at one more)."""
        return self.max_failures.of(total)
