"""The canary's verdict: do the first nodes on the new release stay healthy?

While ``canary_wait`` runs, each canary's ``/status`` must keep naming the
release, and, with haproxy configured, the requests haproxy sent it must not
fail more often than the other nodes' (its ``show stat`` counters, read as
differences over the window). Too few requests to judge is Inconclusive: the
run asks on a terminal and stops without one. Counters that went backwards mean
haproxy restarted: the window starts again rather than judge a difference that
counts nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Sequence

from ..app.config import NodeConfig
from ..cluster import probe
from ..cluster.balancer import Counters, Rotation
from ..errors import NodeError

ERROR_RATE = 0.01  # the canaries fail above this share of failed requests ...
POLL = 1.0  # ... or as soon as /status stops naming the release (checked this often)
RESTARTS = 3  # the window starts again after a haproxy restart at most this often


class Verdict(enum.StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"


@dataclasses.dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    detail: str

    def __str__(self) -> str:
        return f"{self.verdict}: {self.detail}"


@dataclasses.dataclass(frozen=True)
class Watch:
    """What to watch: the canaries, the others (for comparison), the release."""

    canaries: tuple[NodeConfig, ...]
    others: tuple[NodeConfig, ...]
    coordinates: str
    version: str
    seconds: float
    min_requests: int


def judge(watch: Watch, rotation: Rotation | None) -> Judgement:
    """Watch for ``watch.seconds``; a Failed verdict comes as soon as it is seen.

    Counters that went backwards (haproxy restarted, or someone cleared them) count
    nothing: the window starts again from the new reading, up to `RESTARTS` times, and
    the verdict says so."""
    everyone = watch.canaries + watch.others
    before = _counters(rotation, everyone)
    deadline = time.monotonic() + watch.seconds
    restarts = 0
    traffic: Judgement | None = None
    while True:
        failed = _unhealthy(watch)
        if failed:
            return Judgement(Verdict.FAILED, failed)
        now = _counters(rotation, everyone)
        if _went_back(now, before):
            restarts += 1
            if restarts > RESTARTS:
                return Judgement(Verdict.INCONCLUSIVE, _restarted(restarts, watch) + "no verdict")
            before, deadline, traffic = now, time.monotonic() + watch.seconds, None
        else:
            traffic = _traffic(watch, now, before)
        if traffic is not None and traffic.verdict == Verdict.FAILED:
            return _said(traffic, restarts, watch)
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(POLL, left))
    if traffic is not None:
        return _said(traffic, restarts, watch)
    if rotation is not None:
        return Judgement(
            Verdict.INCONCLUSIVE,
            f"/status named the release for {watch.seconds:g} s, but haproxy's counters "
            "could not be read",
        )
    return Judgement(
        Verdict.SUCCESSFUL,
        f"/status named the release for {watch.seconds:g} s; traffic not judged (no load "
        "balancer in .config)",
    )


def _went_back(now: dict[str, Counters], before: dict[str, Counters]) -> bool:
    """Whether any node's counter is lower than at the window's start."""
    return any(now[label].went_back(was) for label, was in before.items() if label in now)


def _restarted(restarts: int, watch: Watch) -> str:
    if restarts > RESTARTS:
        return (
            f"haproxy's counters went backwards {restarts} times (is haproxy restarting "
            "over and over?): "
        )
    return (
        f"haproxy's counters went backwards {restarts} time(s) (haproxy restarted, or its "
        f"counters were cleared), so the window started again: judged over the last "
        f"{watch.seconds:g} s; "
    )


def _said(judgement: Judgement, restarts: int, watch: Watch) -> Judgement:
    """The verdict, saying first that the window started again (when it did)."""
    if not restarts:
        return judgement
    return Judgement(judgement.verdict, _restarted(restarts, watch) + judgement.detail)


def _unhealthy(watch: Watch) -> str:
    """The first canary whose /status does not name the release, in words ('' if none)."""
    for status in probe.probe_all(watch.canaries):
        if not status.ok or (status.coordinates, status.version) != (
            watch.coordinates,
            watch.version,
        ):
            return f"{status.host}: /status answered {status.describe()!r}"
    return ""


def _counters(rotation: Rotation | None, nodes: tuple[NodeConfig, ...]) -> dict[str, Counters]:
    if rotation is None:
        return {}
    try:
        return rotation.counters(nodes)
    except NodeError:
        return {}


def _traffic(
    watch: Watch, now: dict[str, Counters], before: dict[str, Counters]
) -> Judgement | None:
    """The canaries' failed requests from ``before`` to ``now`` against the others'
    (None: not readable)."""
    if not before or not now:
        return None
    mine = _sum(now, before, watch.canaries)
    theirs = _sum(now, before, watch.others)
    rate = mine.errors / mine.requests if mine.requests else 0.0
    their_rate = theirs.errors / theirs.requests if theirs.requests else 0.0
    said = (
        f"{mine.requests} request(s) to the canaries, {mine.errors} failed ({rate:.1%}); "
        f"the other nodes {their_rate:.1%}"
    )
    if mine.requests < watch.min_requests:
        return Judgement(
            Verdict.INCONCLUSIVE,
            f"{said}: fewer than canary_min_requests ({watch.min_requests}) to judge",
        )
    if mine.errors and rate > ERROR_RATE and rate > their_rate:
        return Judgement(Verdict.FAILED, said)
    return Judgement(Verdict.SUCCESSFUL, said)


def _sum(
    now: dict[str, Counters], before: dict[str, Counters], nodes: Sequence[NodeConfig]
) -> Counters:
    total = Counters()
    for node in nodes:
        delta = now.get(node.label, Counters()) - before.get(node.label, Counters())
        total = Counters(total.requests + delta.requests, total.errors + delta.errors)
    return total
