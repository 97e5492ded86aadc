"""``deploy unlock``: the deploy lock on every target node, shown, and cleared where it
is stale (or, with ``--force``, where a run still renews it) after saying whose it was."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from ..app.config import NodeConfig
from ..cluster import nodelock
from ..cluster.node import Node
from ..cluster.nodelock import RENEW, NodeLock
from ..engine.clusterlock import by_holder
from ..errors import ExitCode, LockError, NodeError
from ..view import console as view
from ..words import some
from . import locks
from .options import Options


def unlock(options: Options, force: bool = False) -> ExitCode:
    """Show each target node's deploy lock; clear the stale ones, and with ``force`` the
    live ones too. `LockError` (exit 5) when a live lock is left; `NodeError` (exit 1)
    when a node could not be read or cleared."""
    configs = {config.host: config for config in reversed(options.nodes)}  # a host's first
    found = locks.read(options.nodes)
    for line in locks.lines(found) or [f"lock: free on every node ({len(found)})"]:
        options.console.print(view.plain(line))
    locked = {host: lock for host, lock in found.items() if isinstance(lock, NodeLock)}
    doomed = [(configs[h], lock) for h, lock in locked.items() if lock.stale or force]
    said = _clear_all(doomed, force)
    answers = {h: a for h, a in said.items() if isinstance(a, nodelock.Answer)}
    for line in _cleared_lines(answers):
        options.console.print(view.plain(line))
    left: list[tuple[str, NodeLock | None]] = []
    left += [(h, lock) for h, lock in locked.items() if h not in said]  # live, not forced
    left += [(h, a.lock) for h, a in answers.items() if a.word == nodelock.KEPT]
    if left:
        raise LockError(_still_held(left, options))
    failed = [why for why in [*found.values(), *said.values()] if isinstance(why, str)]
    if failed:
        raise NodeError(f"the deploy lock could not be read or cleared: {'; '.join(failed)}")
    return ExitCode.OK


Said = nodelock.Answer | str  # what clearing a host's lock said, or why it failed


def _clear_all(doomed: Sequence[tuple[NodeConfig, NodeLock]], force: bool) -> dict[str, Said]:
    if not doomed:
        return {}
    with ThreadPoolExecutor(max_workers=min(32, len(doomed))) as pool:
        said = pool.map(lambda pair: _clear(pair[0], pair[1], force), doomed)
        return dict(zip((config.host for config, _ in doomed), said, strict=True))


def _clear(config: NodeConfig, lock: NodeLock, force: bool) -> Said:
    """Clear ``lock`` on the node if it still stands as it was read."""
    node = Node(config)
    script = nodelock.clear_script(config.releases_dir, lock.line, force)
    try:
        text = node.run(script, "clearing the deploy lock", timeout=config.connect_timeout + 10)
    except NodeError as error:
        return str(error)
    finally:
        node.close()
    said = nodelock.answers(text)
    return said[0] if said else f"{config.host}: clearing the deploy lock: no answer"


def _cleared_lines(answers: dict[str, nodelock.Answer]) -> list[str]:
    """``cleared the deploy lock on web1, web2, held by ...``: whose each one was."""
    cleared = [(h, a.lock) for h, a in answers.items() if a.word == nodelock.CLEARED]
    shown = []
    for lock, hosts in by_holder(cleared):
        after = (
            "it had gone stale"
            if lock.stale
            else f"it was live: if that run still goes on, it takes it back within {RENEW:g} s"
        )
        shown.append(f"cleared the deploy lock on {some(hosts)}, held by {lock.who()}; {after}")
    return shown


def _still_held(held: Sequence[tuple[str, NodeLock | None]], options: Options) -> str:
    runs = "; ".join(
        f"on {some(hosts)} by {lock.who()}, {lock.how_long()}" for lock, hosts in by_holder(held)
    )
    return (
        f"the deploy lock is held {runs}: a run renews it, so it was not cleared. Wait for "
        "that run to end (its lease ends once nothing renews it, and the next run then takes "
        "it over); if you know that run is gone and cannot wait, clear it anyway: "
        f"{options.command('unlock', '--force')}"
    )
