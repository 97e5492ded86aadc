"""The deploy lock on every target node: taken all or nothing, kept alive, released.

A run takes `fabfile.cluster.nodelock`'s lock on each host it targets before anything
changes: a deploy or a stage in pre-flight, in the round trip that reads the node
(`ClusterLock.take` with ``read``); rollback and switch first of all, before they read
what they aim at, retire and logging before they touch a node (`ClusterLock.hold`; with
``read``, the holdings it reads are kept for the pre-flight, which then makes no round
trip of its own). The first host by name goes alone and then the others all at once, so
two runs aimed at the same nodes meet on the first and one of them goes on; meanwhile
every other host's connection is dialled, so the logins cost one round trip in all
rather than two; with ``read``, the first host's holdings are read beside the others'
tries (still under its lock), so the reads too cost one round trip. A run that holds
every host already tries them all at once. The holdings read covers every instance on a
host. If another run holds any of them, this one lets go of what it took and is refused
naming the holder (exit 5), or, with ``--lock-wait``, tries again until that time is up,
saying whom it waits for. While held, a thread renews the lease every few seconds over
each node's open connection (never a new one). The lock is released however the run
ends; a run that is killed leaves it to go stale when its lease ends, and one that
cannot reach a node at its end notes it (`fabfile.records.unreleased`) for the next run
from its app directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

from ..app.config import NodeConfig
from ..cluster import nodelock
from ..cluster.holdings import Holdings, by_label, every_script
from ..cluster.node import Node
from ..cluster.nodelock import LEASE, RENEW, NodeLock
from ..errors import Interrupted, LockError, NodeError, PreflightError
from ..records.lock import Holder
from ..records.unreleased import Unreleased
from ..words import some
from . import fanout

PAUSE = 1.0  # seconds between two tries while --lock-wait waits (and up to as much again)
SCRIPT_TIMEOUT = 30.0  # seconds a lock script may take (the mutex alone may wait 10)
INTERRUPTED_TIMEOUT = 2.0  # ... once the run was interrupted ("a second or two")
WORKERS = 16  # renewals at once
NodeFactory = Callable[..., Node]
Say = Callable[[str], None]


def _silent(text: str) -> None:
    """Say nothing: a lock used without a console."""


@dataclasses.dataclass(frozen=True)
class Taken:
    """What taking the lock found: the holdings read in the same round trip (by node
    label), and the hosts where it could not be taken, with why."""

    holdings: dict[str, Holdings]
    errors: dict[str, str]


@dataclasses.dataclass(frozen=True)
class _Try:
    """One host's answer to one try."""

    host: str
    taken: bool = False
    held: NodeLock | None = None  # another run's, in the way
    replaced: NodeLock | None = None  # a stale lock taken over
    ended: NodeLock | None = None  # taken over from a run of this app directory that ended
    holdings: dict[str, Holdings] = dataclasses.field(default_factory=dict)  # by label
    error: str = ""


class ClusterLock:
    """``with ClusterLock(nodes, command) as lock:`` the deploy lock on those nodes, and
    one connection to each (`node`), which the run shares."""

    def __init__(
        self,
        nodes: Sequence[NodeConfig],
        command: str,
        wait: float = 0.0,
        say: Say = _silent,
        node: NodeFactory = Node,
        unreleased: Unreleased | None = None,
    ) -> None:
        self.token = uuid.uuid4().hex
        self.unreleased = unreleased  # where this app directory notes locks left behind
        self.holder = Holder.me(command)
        self.wait = wait
        self.say = say
        self._factory = node
        self._hosts: dict[str, NodeConfig] = {}  # a host's instances share its releases_dir
        self._instances: dict[str, list[NodeConfig]] = {}  # ... and one holdings read
        for config in nodes:
            self._hosts.setdefault(config.host, config)
            self._instances.setdefault(config.host, []).append(config)
        self._nodes: dict[str, Node] = {}
        self._held: set[str] = set()  # hosts whose lock this run took
        self._unsure: set[str] = set()  # hosts whose take failed half-way: released if open
        self._kept: dict[str, Holdings] | None = None  # read by `hold`, for the next `take`
        self._guard = threading.Lock()
        self._stop: threading.Event | None = None
        self._beat: threading.Thread | None = None
        self._renewed: dict[str, float] = {}
        self._warned: set[str] = set()
        self._parting: dict[str, str] = {}  # a script to run just before the release, by host

    def __enter__(self) -> ClusterLock:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # after an interruption the clean-up must end within a second or two: no new
        # login (a silent node would hold it for connect_timeout)
        self.close(dial=not isinstance(value, KeyboardInterrupt | Interrupted))

    def node(self, config: NodeConfig) -> Node:
        """The node's one connection, shared with the run (the rollout's node factory)."""
        with self._guard:
            if config.label not in self._nodes:
                self._nodes[config.label] = self._factory(config)
            return self._nodes[config.label]

    @property
    def held(self) -> list[str]:
        """The hosts whose lock this run holds."""
        with self._guard:
            return sorted(self._held)

    # -- taking ---------------------------------------------------------------------

    def hold(self, read: bool = False) -> None:
        """Take the lock before the command reads what it aims at; a host where it cannot
        be taken refuses the command (exit 4), with nothing changed. ``read`` also reads
        every instance's holdings in that round trip and keeps them for the next `take`
        (the pre-flight's, under the same lock: nothing else changed them meanwhile)."""
        taken = self.take(read)
        errors = taken.errors
        if read and not errors:
            self._kept = taken.holdings
        if errors:
            self.release()
            raise PreflightError(
                f"the deploy lock could not be taken on {len(errors)} of {len(self._hosts)} "
                "node(s); nothing was changed:\n" + "\n".join(f"  {e}" for e in errors.values())
            )

    def take(self, read: bool = False) -> Taken:
        """Take the lock on every target host, or on none: `LockError` naming the holder
        when another run holds one, after waiting up to ``wait`` seconds. ``read`` also
        reads each node's holdings in the same round trip (pre-flight). A host that
        cannot be reached is in `Taken.errors`; the caller refuses the run. Holdings that
        `hold` kept are returned once, with no round trip: the lock was held since."""
        kept, self._kept = self._kept, None
        if read and kept is not None and self._held.issuperset(self._hosts):
            return Taken(kept, {})
        deadline = time.monotonic() + self.wait
        told: set[str] = set()
        while True:
            ended = self.unreleased.tokens() if self.unreleased else {}
            tries = self._try_all(read, ended)
            if self.unreleased:
                with contextlib.suppress(OSError):
                    self.unreleased.drop(t.host for t in tries if t.taken)
            self._say_taken_over(tries)
            others = [t for t in tries if t.held is not None]
            if not others:
                self._start_renewing()
                return Taken(
                    {label: h for t in tries for label, h in t.holdings.items()},
                    {t.host: t.error for t in tries if t.error},
                )
            self.release()
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockError(refusal(others, self.wait))
            self._say_waiting(others, left, told)
            time.sleep(min(left, PAUSE * (1 + random.random())))

    def _try_all(self, read: bool, ended: dict[str, list[str]]) -> list[_Try]:
        """The first host alone (the others' connections dialled meanwhile), then, unless
        another run holds it, the rest at once; all at once if this run holds them all.
        With ``read`` and more than one host, the first host only takes its lock alone:
        its holdings are read beside the others' tries (under its lock, as in one round
        trip), so the reads cost one round trip in all rather than two."""
        order = sorted(self._hosts)
        attempt = functools.partial(self._try, read, ended)
        if not order or self.held == order:  # nobody else can take the first one first
            return fanout.each(attempt, order)
        first = order[0]
        apart = read and len(order) > 1  # the first's read waits for the others' tries

        def first_or_dial(host: str) -> _Try | None:
            if host == first:
                return self._try(read and not apart, ended, host)
            return self._dial(host)

        dialled = fanout.each(first_or_dial, order)
        tries = [t for t in dialled if t is not None]  # the first's, and hosts not reached
        if tries[0].held is not None:
            return tries
        rest = [host for host, t in zip(order, dialled, strict=True) if t is None]
        if not (apart and tries[0].taken):
            return tries + fanout.each(attempt, rest)
        alone = tries[0]

        def read_or_attempt(host: str) -> _Try:
            return self._read(alone) if host == first else attempt(host)

        return [*fanout.each(read_or_attempt, [first, *rest]), *tries[1:]]

    def _dial(self, host: str) -> _Try | None:
        """Open the host's connection (no command on it yet); its failure, as a try's."""
        try:
            self.node(self._hosts[host]).open()
        except NodeError as error:
            return _Try(host, error=str(error))
        return None

    def _try(self, read: bool, ended: dict[str, list[str]], host: str) -> _Try:
        config = self._hosts[host]
        node = self.node(config)
        gone = ended.get(host, ())
        script = nodelock.take_script(config.releases_dir, self.token, self.holder, ended=gone)
        what = "taking the deploy lock"
        instances = self._instances[host]
        if read:
            script += "\n" + every_script(instances, tidy=True, locked=True)
            what += " and reading the releases directory"
        with self._guard:
            self._unsure.add(host)
        try:
            text = node.run(script, what, timeout=SCRIPT_TIMEOUT)
        except NodeError as error:
            return _Try(host, error=str(error))
        said = {answer.word: answer.lock for answer in nodelock.answers(text)}
        with self._guard:
            self._unsure.discard(host)
            if nodelock.TAKEN in said:
                self._held.add(host)
        if nodelock.TAKEN not in said:
            if said.get(nodelock.HELD) is None:
                return _Try(host, error=f"{host}: {what}: the node did not say ({text[-200:]!r})")
            return _Try(host, held=said[nodelock.HELD])
        holdings = self._holdings(host, text) if read else {}
        stale, over = said.get(nodelock.STALE), said.get(nodelock.ENDED)
        return _Try(host, taken=True, replaced=stale, ended=over, holdings=holdings)

    def _read(self, tried: _Try) -> _Try:
        """``tried`` (its lock taken) with the host's holdings, read now, under that lock;
        or with why they could not be (the lock stays held: `release` lets go of it)."""
        host = tried.host
        script = every_script(self._instances[host], tidy=True, locked=True)
        try:
            text = self.node(self._hosts[host]).run(
                script, "reading the releases directory", timeout=SCRIPT_TIMEOUT
            )
        except NodeError as error:
            return dataclasses.replace(tried, error=str(error))
        return dataclasses.replace(tried, holdings=self._holdings(host, text))

    def _holdings(self, host: str, text: str) -> dict[str, Holdings]:
        """The holdings of every instance on ``host``, by label, from the read's output;
        the node learns its HOME from them."""
        config = self._hosts[host]
        holdings = by_label(self._instances[host], text)
        if config.label in holdings:
            self.node(config).home = holdings[config.label].home
        return holdings

    # -- letting go -----------------------------------------------------------------

    def part_with(self, host: str, script: str) -> None:
        """Run ``script`` on ``host`` in the command that releases the lock there, just
        before (best effort: its failure is not the release's, and a host the release
        does not reach skips it): a run's clean-up adds no round trip of its own."""
        with self._guard:
            if host in self._held:
                self._parting[host] = script

    def release(self, dial: bool = True) -> None:
        """Stop renewing and remove this run's lock wherever it holds it; a host that
        cannot be reached keeps it until its lease ends, and that is said. Without
        ``dial``, only over the connections still open: a host without one keeps it."""
        self._stop_renewing()
        self._kept = None
        with self._guard:
            sure, unsure = sorted(self._held), sorted(self._unsure)
            self._held.clear()
            self._unsure.clear()
            parting, self._parting = self._parting, {}
        release = functools.partial(self._release, frozenset(unsure), dial, parting)
        hosts = sure + unsure
        said = zip(hosts, fanout.each(release, hosts), strict=True)
        errors = {host: error for host, error in said if error}
        if not errors:
            return
        if self.unreleased:
            with contextlib.suppress(OSError):  # only a shortcut for the next run: never fatal
                self.unreleased.add(errors, self.token)
        self.say(
            f"the deploy lock could not be released on {some(list(errors))} "
            f"({next(iter(errors.values()))}); the next run from this app directory takes it "
            f"over, and for others it goes stale {LEASE:g} s after its last renewal"
        )

    def _release(
        self, unsure: frozenset[str], dial: bool, parting: dict[str, str], host: str
    ) -> str:
        config = self._hosts[host]
        node = self.node(config)
        script = nodelock.release_script(config.releases_dir, self.token)
        if before := parting.get(host):
            script = f"( {before} ) >/dev/null 2>&1\n{script}"
        if node.silent_while:  # no new login just for this: it would wait connect_timeout
            return f"{host} went silent while {node.silent_while}"
        try:
            if host in unsure or not dial:  # no new login just for this
                limit = SCRIPT_TIMEOUT if dial else INTERRUPTED_TIMEOUT
                node.beside(script, "releasing the deploy lock", limit)
            else:
                node.run(script, "releasing the deploy lock", timeout=SCRIPT_TIMEOUT)
        except NodeError as error:
            return "" if host in unsure else str(error)
        return ""

    def close(self, dial: bool = True) -> None:
        """Release, then close every connection."""
        try:
            self.release(dial)
        finally:
            with self._guard:
                nodes = list(self._nodes.values())
            for node in nodes:
                node.close()

    # -- renewing -------------------------------------------------------------------

    def _start_renewing(self) -> None:
        if self._beat is not None:
            return
        now = time.monotonic()
        self._renewed = dict.fromkeys(self.held, now)
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._renew_all, name="deploy-lock", daemon=True)
        self._beat.start()

    def _stop_renewing(self) -> None:
        if self._beat is None or self._stop is None:
            return
        self._stop.set()
        self._beat.join()
        self._beat = self._stop = None

    def _renew_all(self) -> None:
        assert self._stop is not None
        stop = self._stop
        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="deploy-lock") as pool:
            while not stop.wait(RENEW):
                list(pool.map(self._renew, self.held))

    def _renew(self, host: str) -> None:
        """Renew the lease on one host; say so once if it is lost or cannot be renewed."""
        config = self._hosts[host]
        script = nodelock.take_script(config.releases_dir, self.token, self.holder)
        try:
            text = self.node(config).beside(script, "renewing the deploy lock", RENEW)
        except NodeError as error:
            if time.monotonic() - self._renewed.get(host, 0.0) > LEASE - RENEW:
                self._warn(host, f"could not be renewed for {LEASE - RENEW:g} s ({error})")
            return
        said = {answer.word: answer.lock for answer in nodelock.answers(text)}
        if nodelock.TAKEN in said:
            self._renewed[host] = time.monotonic()
            self._warned.discard(host)
        elif (other := said.get(nodelock.HELD)) is not None:
            self._warn(host, f"is now held by {other.who()}: that run took it over")

    def _warn(self, host: str, what: str) -> None:
        if host in self._warned:
            return
        self._warned.add(host)
        self.say(
            f"warning: the deploy lock on {host} {what}; another run may change {host} "
            "while this one does"
        )

    # -- words ----------------------------------------------------------------------

    def _say_taken_over(self, tries: Sequence[_Try]) -> None:
        for lock, hosts in by_holder([(t.host, t.replaced) for t in tries if t.replaced]):
            self.say(
                f"took over the deploy lock on {some(hosts)}, left by {lock.who()}: "
                f"{lock.how_long()}"
            )
        for lock, hosts in by_holder([(t.host, t.ended) for t in tries if t.ended]):
            self.say(
                f"took over the deploy lock on {some(hosts)}, left by {lock.who()}: that run "
                "of this app directory ended without releasing it there (the node could not "
                "be reached at its end)"
            )

    def _say_waiting(self, others: Sequence[_Try], left: float, told: set[str]) -> None:
        for lock, hosts in by_holder([(t.host, t.held) for t in others if t.held]):
            if lock.token not in told:
                told.add(lock.token)
                self.say(
                    f"waiting up to {left:.0f} s for the deploy lock on {some(hosts)}, held by "
                    f"{lock.who()} ({lock.how_long()})"
                )


def refusal(others: Sequence[_Try], waited: float) -> str:
    """The sentence a run refused by another's lock reads: whose, where, what to do."""
    held = "; ".join(
        f"on {some(hosts)} by {lock.who()}, {lock.how_long()}"
        for lock, hosts in by_holder([(t.host, t.held) for t in others if t.held])
    )
    after = f"after waiting {waited:g} s, " if waited else ""
    return (
        f"{after}the deploy lock is held {held}; nothing was changed. Wait for that run to "
        "end, or have this command wait for it: --lock-wait SECONDS. If that run is gone (its "
        f"coordinator died), its lock goes stale {LEASE:g} s after its last renewal and the "
        "next run takes it over; `deploy unlock` shows it and clears a stale one"
    )


def by_holder(found: Sequence[tuple[str, NodeLock | None]]) -> list[tuple[NodeLock, list[str]]]:
    """The locks found, one per run that holds them, with the hosts of each (in order)."""
    groups: dict[str, tuple[NodeLock, list[str]]] = {}
    for host, lock in found:
        if lock is not None:
            groups.setdefault(lock.token or lock.line, (lock, []))[1].append(host)
    return list(groups.values())
