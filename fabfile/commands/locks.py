"""The locks a command takes, and how a command that only reads them shows them.

A command that changes the cluster holds two: the app directory's own
(`fabfile.records.lock`: its history and archive, one command at a time from it) and
the deploy lock on every target node (`fabfile.engine.clusterlock`), which every
coordinator and every copy of the app directory share. Status, the dry run and
``deploy unlock`` read the nodes' locks.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from ..app.config import NodeConfig
from ..cluster import nodelock
from ..cluster.node import Node
from ..cluster.nodelock import NodeLock
from ..engine.clusterlock import ClusterLock, Say, by_holder
from ..errors import NodeError
from ..records.lock import Lock
from ..records.unreleased import Unreleased
from ..view import console as view
from ..words import some
from .options import Options

Found = NodeLock | str | None  # a host's lock, why it could not be read, or None: free


@contextlib.contextmanager
def locked(options: Options, command: str) -> Iterator[ClusterLock]:
    """The app directory's lock, then the nodes' (`ClusterLock`: taken by pre-flight, or
    by `ClusterLock.hold`), both released however the command ends; ``--lock-wait``
    is the time allowed for both."""
    say = saying(options)
    started = time.monotonic()
    with Lock(options.app.lock_path, command, options.lock_wait, say):
        left = max(0.0, options.lock_wait - (time.monotonic() - started))
        unreleased = Unreleased(options.app.lock_path)
        with ClusterLock(options.nodes, command, left, say, unreleased=unreleased) as lock:
            yield lock


def saying(options: Options) -> Say:
    """Print a line of the lock's (whom it waits for, what it took over)."""

    def say(text: str) -> None:
        options.console.print(view.plain(text))

    return say


def read(nodes: Sequence[NodeConfig]) -> dict[str, Found]:
    """Each target host's deploy lock as it stands, read in parallel, each bounded by the
    node's connect_timeout."""
    hosts: dict[str, NodeConfig] = {}
    for config in nodes:
        hosts.setdefault(config.host, config)
    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(32, len(hosts))) as pool:
        return dict(zip(hosts, pool.map(_read_one, hosts.values()), strict=True))


def _read_one(config: NodeConfig) -> Found:
    node = Node(config)
    script = nodelock.read_script(config.releases_dir)
    try:
        text = node.run(script, "reading the deploy lock", timeout=config.connect_timeout)
    except NodeError as error:
        return str(error)
    finally:
        node.close()
    said = nodelock.answers(text)
    return said[0].lock if said else None


def lines(found: Mapping[str, Found]) -> list[str]:
    """``lock: held on web1, web2 by ...``: one line per run holding the nodes, one per
    stale lock, one for the hosts that could not be read; none when all are free."""
    locks = [(host, lock) for host, lock in found.items() if isinstance(lock, NodeLock)]
    shown = [
        f"lock: held on {some(hosts)} by {lock.who()}, {lock.how_long()}"
        for lock, hosts in by_holder([(h, lock) for h, lock in locks if not lock.stale])
    ]
    shown += [
        f"lock: stale on {some(hosts)}, left by {lock.who()}: {lock.how_long()}; the next run "
        "takes it over, `deploy unlock` clears it now"
        for lock, hosts in by_holder([(h, lock) for h, lock in locks if lock.stale])
    ]
    unread = [(host, why) for host, why in found.items() if isinstance(why, str)]
    if unread:
        shown.append(f"lock: not read on {some([h for h, _ in unread])} ({unread[0][1]})")
    return shown
