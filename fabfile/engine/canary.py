"""The verdict on nodes on the new release: do they stay healthy?

The canaries are judged over ``canary_wait``, each later batch over its warm-up, and
the whole cluster over the ``watch`` window after the last batch. Meanwhile each judged
node's ``/status`` must keep naming the release, and, with haproxy configured, the
requests haproxy sent them must not fail more often than ``max_error_rate``, the other
nodes' and their own before the run (its ``show stat`` counters, read as differences
over the window; the rate before is the servers' lifetime share at the run's start),
nor be answered more than ``max_slowdown`` times (and `SLOWER_MS` more) slower than the
other nodes' over the same window or their own before the run (haproxy's ``rtime``).
Too few requests to judge is Inconclusive: for the canaries the run asks on a terminal
and stops without one; after a later batch or in the watch window it is only said.
Counters that went backwards mean
haproxy restarted: the window starts again rather than judge a difference that
counts nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable, Sequence

from ..app.config import NodeConfig
from ..cluster import probe
from ..cluster.balancer import Counters, Rotation
from ..errors import NodeError

POLL = 1.0  # a verdict fails as soon as /status stops naming the release (checked this often)
SLOWER_MS = 50.0  # slower than max_slowdown allows counts only this much slower too
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
    """What to watch: the nodes judged (``canaries``), the others (for comparison), the
    release; ``before``: the judged servers' counters at the run's start."""

    canaries: tuple[NodeConfig, ...]
    others: tuple[NodeConfig, ...]
    coordinates: str
    version: str
    seconds: float
    min_requests: int
    max_error_rate: float = 0.01
    max_slowdown: float = 3.0
    before: dict[str, Counters] = dataclasses.field(default_factory=dict)
    who: str = "the canaries"  # how the verdict names the judged nodes


Tick = Callable[[Judgement], None]  # the verdict so far, once a poll


def judge_once(watch: Watch, now: dict[str, Counters], before: dict[str, Counters]) -> Judgement:
    """The verdict over a window already waited (a batch's warm-up): /status now, and
    haproxy's counters from ``before`` to ``now``."""
    failed = _unhealthy(watch)
    if failed:
        return Judgement(Verdict.FAILED, failed)
    traffic = None if _went_back(now, before) else _traffic(watch, now, before)
    if traffic is not None:
        return traffic
    return Judgement(Verdict.INCONCLUSIVE, "haproxy's counters could not be compared")


def judge(watch: Watch, rotation: Rotation | None, tick: Tick | None = None) -> Judgement:
    """Watch for ``watch.seconds``; a Failed verdict comes as soon as it is seen.

    Counters that went backwards (haproxy restarted, or someone cleared them) count
    nothing: the window starts again from the new reading, up to `RESTARTS` times, and
    the verdict says so."""
    everyone = watch.canaries + watch.others
    before = counters(rotation, everyone)
    deadline = time.monotonic() + watch.seconds
    restarts = 0
    traffic: Judgement | None = None
    while True:
        failed = _unhealthy(watch)
        if failed:
            return Judgement(Verdict.FAILED, failed)
        now = counters(rotation, everyone)
        if _went_back(now, before):
            restarts += 1
            if restarts > RESTARTS:
                return Judgement(Verdict.INCONCLUSIVE, _restarted(restarts, watch) + "no verdict")
            before, deadline, traffic = now, time.monotonic() + watch.seconds, None
        else:
            traffic = _traffic(watch, now, before)
        if traffic is not None and traffic.verdict == Verdict.FAILED:
            return _said(traffic, restarts, watch)
        if tick is not None and traffic is not None:
            tick(traffic)
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


def counters(rotation: Rotation | None, nodes: tuple[NodeConfig, ...]) -> dict[str, Counters]:
    """Each node's haproxy counters; empty without a balancer or when they can't be read."""
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
    rate = _rate(mine)
    said = f"{mine.requests} request(s) to {watch.who}, {mine.errors} failed ({rate:.1%})"
    if watch.others:
        said += f"; the other nodes {_rate(theirs):.1%}"
    was = _rate(_sum(watch.before, {}, watch.canaries))
    if watch.before:
        said += f"; the same servers before the run {was:.1%}"
    if mine.requests < watch.min_requests:
        return Judgement(
            Verdict.INCONCLUSIVE,
            f"{said}: fewer than canary_min_requests ({watch.min_requests}) to judge",
        )
    worse = rate > _rate(theirs) and rate > was
    if mine.errors and rate > watch.max_error_rate and worse:
        return Judgement(
            Verdict.FAILED, f"{said}, above max_error_rate ({watch.max_error_rate:.1%})"
        )
    slower = _slower(watch, now, before)
    if slower:
        return Judgement(Verdict.FAILED, f"{said}; {slower}")
    return Judgement(Verdict.SUCCESSFUL, said)


def _slower(watch: Watch, now: dict[str, Counters], before: dict[str, Counters]) -> str:
    """How much slower the judged nodes answered over the window than the others did
    and than they did before the run, in words, when that is beyond ``max_slowdown``
    (and `SLOWER_MS`); '' when it is not, or nothing can be compared."""
    mine = _window_ms(now, before, watch.canaries)
    if mine is None:
        return ""
    references = []
    theirs = _window_ms(now, before, watch.others)
    if theirs is not None:
        references.append((theirs, "the other nodes'"))
    was = [watch.before[n.label].rtime for n in watch.canaries if n.label in watch.before]
    if was and max(was) > 0:
        references.append((sum(was) / len(was), "their own before the run"))
    if not references:
        return ""
    reference, whose = max(references)
    limit = watch.max_slowdown * max(reference, 1.0)
    if mine <= limit or mine - reference < SLOWER_MS:
        return ""
    return (
        f"answered in {mine:.0f} ms on average, {mine / max(reference, 1.0):.1f} times "
        f"{whose} {reference:.0f} ms, above max_slowdown ({watch.max_slowdown:g})"
    )


def _window_ms(
    now: dict[str, Counters], before: dict[str, Counters], nodes: Sequence[NodeConfig]
) -> float | None:
    """The nodes' mean response time over the window, weighted by their requests."""
    weighted = requests = 0.0
    for node in nodes:
        was = before.get(node.label, Counters())
        counters = now.get(node.label, Counters())
        mean = counters.window_ms(was)
        if mean is not None:
            new = counters.requests - was.requests
            weighted, requests = weighted + mean * new, requests + new
    return weighted / requests if requests else None


def _rate(counters: Counters) -> float:
    return counters.errors / counters.requests if counters.requests else 0.0


def _sum(
    now: dict[str, Counters], before: dict[str, Counters], nodes: Sequence[NodeConfig]
) -> Counters:
    total = Counters()
    for node in nodes:
        delta = now.get(node.label, Counters()) - before.get(node.label, Counters())
        total = Counters(total.requests + delta.requests, total.errors + delta.errors)
    return total
