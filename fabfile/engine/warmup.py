"""Warm-up that is more than a sleep: the node's own URLs first, then a weight ramp.

Before a verified node goes back in rotation, the paths in ``warmup_urls`` are
fetched from it directly (its caches and JIT see real pages before users do).
Back in rotation, its haproxy weight rises from a small share to full over
``warmup`` seconds, so a cold JVM is not handed its full share at once. A
backend whose balance algorithm is static refuses weights between 0% and
100%: then the warm-up is a plain wait, and the run says so.
"""

from __future__ import annotations

import contextlib
import math
import time
import urllib.parse
from collections.abc import Callable, Sequence

from ..app.config import NodeConfig
from ..cluster import http, tunnel
from ..cluster.balancer import Rotation
from ..errors import NodeError

STEPS = 10  # at most this many weight changes over a warm-up


def first_weight(seconds: float) -> int:
    """The weight (percent) a node comes back in rotation with, before the ramp."""
    return 100 // _steps(seconds)


def ramp(
    rotation: Rotation, nodes: Sequence[NodeConfig], seconds: float, note: Callable[[str], None]
) -> None:
    """Raise the nodes' weight step by step to 100% over ``seconds``; full weight at the
    end whatever happens (an interrupted ramp must not leave a node at a small share)."""
    steps = _steps(seconds)
    started = time.monotonic()
    try:
        for step in range(1, steps + 1):
            for node in nodes:
                rotation.set_weight(node, 100 * step // steps)
            time.sleep(max(0.0, started + seconds * step / steps - time.monotonic()))
    except NodeError as error:
        note(f"warm-up weight ramp not possible ({error}); waiting {seconds:g} s instead")
        time.sleep(max(0.0, started + seconds - time.monotonic()))
    finally:
        for node in nodes:
            with contextlib.suppress(NodeError):  # refused above already, and said so
                rotation.set_weight(node, 100)


def _steps(seconds: float) -> int:
    return max(1, min(STEPS, math.ceil(seconds)))


def fetch(node: NodeConfig) -> list[str]:
    """Fetch the node's warm-up paths from it, one after another; what went wrong, in
    words (a warm-up page that fails does not fail the node: /status verified it)."""
    parts = urllib.parse.urlsplit(node.url)
    problems = []
    for path in node.warmup_urls:
        url = f"{parts.scheme}://{parts.netloc}{path}"
        try:
            response = http.request(
                "GET",
                url,
                connect_timeout=node.status_timeout,
                read_timeout=node.status_timeout,
                way=tunnel.way(node),
            )
        except http.HttpError as error:
            problems.append(f"{url}: {error.cause or type(error.cause).__name__}")
            continue
        if response.status >= 400:
            problems.append(f"{url}: HTTP {response.status}")
    return problems
