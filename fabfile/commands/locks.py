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
from typing import TYPE_CHECKING

from ..app.config import NodeConfig
from ..cluster import nodelock, sshport
from ..cluster.nodelock import NodeLock
from ..errors import NodeError
from ..view import console as view
from ..words import some
from .options import Options

if TYPE_CHECKING:
    from ..engine.clusterlock import ClusterLock, Say

# SSH (Paramiko, Fabric) is loaded only when a host's sshd takes the connection
# (`sshport`): status, when a node fails, reads every host's lock, and a thousand hosts
# whose sshd refuses are told without it.

Found = NodeLock | str | None  # a host's lock, why it could not be read, or None: free


@contextlib.contextmanager
def locked(options: Options, command: str) -> Iterator[ClusterLock]:
    """The app directory's lock, then the nodes' (`ClusterLock`: taken by pre-flight, or
    by `ClusterLock.hold`), both released however the command ends; ``--lock-wait``
    is the time allowed for both."""
    from ..engine.clusterlock import ClusterLock
    from ..records.lock import Lock
    from ..records.unreleased import Unreleased

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


def turned_away(nodes: Sequence[NodeConfig]) -> dict[str, str]:
    """The target hosts whose sshd turns a connection away, with why (`sshport`): `read`'s
    first step, which status starts while its probes still run."""
    return sshport.turned_away(c for c in _hosts(nodes).values() if sshport.direct(c))


def read(nodes: Sequence[NodeConfig], turned: Mapping[str, str] | None = None) -> dict[str, Found]:
    """Each target host's deploy lock as it stands, read in parallel, each bounded by the
    node's connect_timeout; a host whose sshd turns the connection away is told so
    without SSH (`turned_away`, or ``turned`` when the caller has it already), in the
    words SSH would use."""
    hosts = _hosts(nodes)
    found: dict[str, Found] = dict.fromkeys(hosts)
    found.update(turned_away(nodes) if turned is None else turned)
    rest = [config for host, config in hosts.items() if found[host] is None]
    if not rest:
        return found
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(32, len(rest))) as pool:
        found.update(zip((c.host for c in rest), pool.map(_read_one, rest), strict=True))
    return found


def _hosts(nodes: Sequence[NodeConfig]) -> dict[str, NodeConfig]:
    """Each host once (the lock is the host's, whichever instance), in the nodes' order."""
    hosts: dict[str, NodeConfig] = {}
    for config in nodes:
        hosts.setdefault(config.host, config)
    return hosts


def _read_one(config: NodeConfig) -> Found:
    from ..cluster.node import Node

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
    if not locks:
        return _unread(found)
    from ..engine.clusterlock import by_holder

    shown = [
        f"lock: held on {some(hosts)} by {lock.who()}, {lock.how_long()}"
        for lock, hosts in by_holder([(h, lock) for h, lock in locks if not lock.stale])
    ]
    shown += [
        f"lock: stale on {some(hosts)}, left by {lock.who()}: {lock.how_long()}; the next run "
        "takes it over, `deploy unlock` clears it now"
        for lock, hosts in by_holder([(h, lock) for h, lock in locks if lock.stale])
    ]
    return shown + _unread(found)


def _unread(found: Mapping[str, Found]) -> list[str]:
    """The hosts whose lock could not be read, with the first one's reason."""
    unread = [(host, why) for host, why in found.items() if isinstance(why, str)]
    if not unread:
        return []
    return [f"lock: not read on {some([h for h, _ in unread])} ({unread[0][1]})"]
