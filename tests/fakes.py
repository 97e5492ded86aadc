"""A fake cluster between `fabric.testing` and the real stack: nodes, a balancer and
a Tomcat manager that record what was done to them, for the strategy contract suite.

`FakeNode` answers what `fabfile.engine.rollout.Rollout`, the runtimes and the dry run
ask of a `fabfile.cluster.node.Node`; `FakeCluster.probe` stands in for ``/status``;
`FakeBalancer` is a `fabfile.cluster.balancer.Rotation`; `FakeManager` is the Tomcat
manager that parallel deployment deploys through. Everything done is appended to
`FakeCluster.events` as ``(host, what)``, in order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytest

from fabfile.app.config import NodeConfig
from fabfile.app.release import Release
from fabfile.app.tag import Tag
from fabfile.cluster import probe
from fabfile.cluster.balancer import Admin, Counters, State
from fabfile.cluster.holdings import Holdings
from fabfile.cluster.manager import Deployed, Heap
from fabfile.cluster.ownership import Owner
from fabfile.cluster.portowner import PortReport
from fabfile.cluster.probe import Status
from fabfile.cluster.takenout import TakenOut
from fabfile.engine import strategies
from fabfile.errors import NodeError

Event = tuple[str, str]


def node_configs(tmp_path: Path, *lines: str, app: str = "shop") -> tuple[NodeConfig, ...]:
    """Nodes as ``.config`` text makes them (``[deploy]`` and ``lines``), read as the tool
    reads it: by the real parser, checked by the strategy it names."""
    path = tmp_path / ".config"
    path.write_text("\n".join(["[deploy]", *lines]) + "\n")
    return strategies.load(path, app=app).nodes


@dataclasses.dataclass
class FakeHost:
    """One node's (or instance's) state: the release installed, the one running, how it behaves."""

    installed: Release | None = None
    running: Release | None = None
    broken: bool = False  # a restart leaves it answering 500
    edited: tuple[tuple[str, str], ...] = ()  # config files changed by hand: (kind, sha256)
    before: dict[str, Callable[[], None]] = dataclasses.field(default_factory=dict)
    # "install", "restart" or "deploy" (the manager's) -> called first, e.g. to raise
    # KeyboardInterrupt or NodeError
    taken_out: TakenOut | None = None  # the tool's mark: a run took it out of rotation


class FakeCluster:
    """Every fake node's state, the events, and the /status answers."""

    def __init__(self, nodes: tuple[NodeConfig, ...]) -> None:
        self.hosts = {node.label: FakeHost() for node in nodes}  # by host or host/instance
        self.blobs: dict[str, set[str]] = {node.host: set() for node in nodes}  # shared by a host
        self.events: list[Event] = []
        self.uptime = 1000.0
        self.releases: dict[str, Release] = {}  # by version: what a Tomcat version tag runs
        self.owners: dict[str, Owner] = {}  # by host: the app its releases directory names
        self.changed: dict[str, set[str]] = {}  # by host: staged blobs changed there since

    def start_on(self, release: Release) -> None:
        """Every node installed and running ``release`` (the state before a deploy)."""
        self.know(release)
        for host in self.hosts.values():
            host.installed = host.running = release
        for blobs in self.blobs.values():
            blobs |= release.blobs

    def know(self, release: Release) -> None:
        self.releases[release.version] = release

    def of(self, host: str) -> list[str]:
        return [what for where, what in self.events if where == host]

    def probe(self, node: NodeConfig, since: float | None = None) -> Status:
        host, label = self.hosts[node.label], node.label
        if host.running is None:
            return Status(label, node.url, False, "connection refused")
        if host.broken:
            return Status(label, node.url, False, "HTTP 500: broken", 500)
        release = host.running
        return Status(label, node.url, True, "", 200, release.coordinates, release.version)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Route /status through the fake cluster."""
        monkeypatch.setattr(probe, "probe", self.probe)


class FakeNode:
    """What the rollout and the restart runtime ask of a node, recorded."""

    def __init__(self, cluster: FakeCluster, config: NodeConfig) -> None:
        self.cluster = cluster
        self.config = config
        self.host = config.host
        self.state = cluster.hosts[config.label]
        self.blobs = cluster.blobs[config.host]
        self.run_id = "fake-run"
        self.holder = ""
        self.silent_while = ""

    def _did(self, what: str) -> None:
        self.cluster.events.append((self.config.label, what))

    def _hook(self, step: str) -> None:
        if step in self.state.before:
            self.state.before[step]()

    def holdings(self, tidy: bool = True) -> Holdings:
        self._did("holdings")
        installed = self.state.installed
        files = (("config", installed.config), ("jettyrc", installed.jettyrc)) if installed else ()
        return Holdings(
            "/home/u",
            10**9,
            frozenset(self.blobs),
            installed,
            (),
            files=files + self.state.edited,
            taken_out=self.state.taken_out,
            owner=self.cluster.owners.get(self.host),
        )

    def upload(self, local: Path, sha256: str, check: bool = True) -> int:
        self._did(f"upload {sha256[:8]}")
        assert sha256 not in self.blobs, f"{self.host}: sent {sha256[:8]} twice"
        self.blobs.add(sha256)
        return 100

    def install(self, release: Release, only: tuple[str, ...] = (), sources: object = None) -> int:
        assert release.blobs <= self.blobs, f"{self.host}: installed before it was staged"
        self._hook("install")
        self._did(f"install {release.version}")
        self.state.installed = release
        self.state.edited = ()
        return 0

    def prepare(
        self,
        release: Release,
        sources: Mapping[str, Path] | None = None,
        fresh: frozenset[str] = frozenset(),
    ) -> int:
        """As the node's script: each copy checked, a blob that changed (`FakeCluster.changed`)
        sent again from ``sources``."""
        assert release.blobs <= self.blobs, f"{self.host}: prepared before it was staged"
        self._did(f"prepare {release.version}")
        changed = self.cluster.changed.get(self.host, set()) & release.blobs
        if not changed:
            return 0
        self.blobs -= changed
        self.cluster.changed[self.host] = set()
        return self.resend(dict.fromkeys(changed, "0" * 64), sources or {})

    def discard(self, release: Release) -> None:
        self._did(f"discard {release.version}")

    def changed_blobs(self, shas: Iterable[str]) -> dict[str, str]:
        """The staged blobs that changed on the node (`FakeCluster.changed`), removed."""
        self._did("checked staged files")
        changed = self.cluster.changed.get(self.host, set()) & set(shas)
        self.blobs -= changed
        self.cluster.changed[self.host] = set()
        return dict.fromkeys(changed, "0" * 64)

    def resend(self, changed: dict[str, str], sources: Mapping[str, Path]) -> int:
        lacking = [sha for sha in changed if sha not in sources]
        if lacking:
            raise NodeError(f"{self.host}: staged file(s) changed; no copy of {lacking}")
        return sum(self.upload(sources[sha], sha) for sha in changed)

    def put_in_place(
        self, script: str, what: str, sources: object = None, stdin: bytes = b""
    ) -> int:
        """A script of the parallel runtime that copies staged files into place: recorded."""
        self._did(what)
        return 0

    def claim_owner(self, owner: Owner) -> Owner:
        """The releases directory names its app: the first to ask."""
        if self.cluster.owners.setdefault(self.host, owner) is owner:
            self._did("named owner")
        return self.cluster.owners[self.host]

    def take_out(self) -> None:
        self._did("marked taken out")
        self.state.taken_out = TakenOut(None, self.run_id)

    def put_back(self) -> None:
        self._did("mark cleared")
        self.state.taken_out = None

    def restart(self, holder: str, run: str, stale: str = "") -> tuple[None, float]:
        self._hook("restart")
        self._did("restart")
        self.state.running = self.state.installed
        self.cluster.uptime += 1
        return None, self.cluster.uptime

    def release_restart(self, run: str) -> None:
        self._did("release restart claim")

    def clear_claim(self, line: str) -> None:
        self._did("clear claim")

    def restart_claim(self) -> tuple[None, PortReport]:
        return None, self.port_report()

    def port_report(self) -> PortReport:
        return PortReport(8080, (), "", None, self.cluster.uptime, 1.8e9)

    def prune(self, holdings: Holdings, keep: frozenset[str]) -> None:
        self._did("prune")

    def prune_script(self, holdings: Holdings, keep: frozenset[str]) -> str:
        self._did("prune")
        return ""

    def run(self, script: str, what: str, timeout: float | None = None) -> str:
        """A script of the parallel runtime (laying out a version, tidying): recorded."""
        self._did(what)
        return ""

    def absolute(self, path: str) -> str:
        return path.replace("~", "/home/u", 1)

    def record(self, release: Release) -> None:
        """Parallel: the version verified is what the node records as current."""
        self._did(f"record {release.version}")
        self.state.installed = release

    def read_files(
        self, words: list[str], before: str = "", limit: int = 1 << 20
    ) -> list[bytes | None]:
        """The dry run's and drift's read: recorded (the first word says where
        config.properties is read); the node has none of them."""
        self._did(f"read {words[0]}")
        return [None] * len(words)

    def close(self) -> None:
        pass


class FakeBalancer:
    """A `Rotation` that records every state change; every node starts UP (``now``)."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.now: dict[str, State] = dict.fromkeys(cluster.hosts, State.UP)
        self.most_out = 0  # the most nodes out of rotation at one moment
        self.up_after_ready = True  # False: a server set ready never comes UP
        self.most_hosts_out = 0  # the most hosts with no node in rotation at one moment
        self.weights: dict[str, list[int]] = {}  # every weight set, by node
        self.traffic: dict[str, Counters] = {}  # what `counters` reports, by node
        self.per_read: dict[str, Counters] = {}  # added to `traffic` at every reading

    def _set(self, node: NodeConfig, state: State) -> None:
        self.now[node.label] = state
        self.cluster.events.append((node.label, f"lb {state}"))
        self.most_out = max(self.most_out, sum(s != State.UP for s in self.now.values()))
        up = {label.partition("/")[0] for label, s in self.now.items() if s == State.UP}
        out = {label.partition("/")[0] for label in self.now} - up
        self.most_hosts_out = max(self.most_hosts_out, len(out))

    def states(self, nodes: tuple[NodeConfig, ...]) -> dict[str, State]:
        return {node.label: self.now[node.label] for node in nodes}

    def wait_up(self, node: NodeConfig) -> State:
        if not self.up_after_ready:
            self.now[node.label] = State.DOWN
        return self.now[node.label]

    def mismatches(self, nodes: tuple[NodeConfig, ...]) -> list[str]:
        return []

    def drain(self, node: NodeConfig) -> float:
        self._set(node, State.DRAIN)
        return 0.0

    def idle(self, node: NodeConfig) -> float:
        self.cluster.events.append((node.label, "lb waited for sessions"))
        return 0.0

    def ready(self, node: NodeConfig, weight: int = 100) -> int:
        self._set(node, State.UP)
        self.set_weight(node, weight)
        return weight

    def set_weight(self, node: NodeConfig, percent: int) -> None:
        self.weights.setdefault(node.label, []).append(percent)

    def counters(self, nodes: tuple[NodeConfig, ...]) -> dict[str, Counters]:
        """Every reading adds ``per_read`` to a node's counters: traffic between reads."""
        for label, more in self.per_read.items():
            now = self.traffic.get(label, Counters())
            self.traffic[label] = Counters(now.requests + more.requests, now.errors + more.errors)
        return {node.label: self.traffic.get(node.label, Counters()) for node in nodes}

    def set_state(self, node: NodeConfig, state: Admin) -> None:
        """haproxy's runtime states: ``ready`` is back in rotation (UP), as `ready` is."""
        self._set(node, State.UP if state == Admin.READY else State(state.upper()))


class FakeManager:
    """The Tomcat manager of every node: the versions it holds (by tag, each running a
    release the cluster knows); the newest one answers ``/status``, as in Tomcat."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.held: dict[str, list[tuple[str, Release]]] = {label: [] for label in cluster.hosts}
        for label, host in cluster.hosts.items():
            if host.running is not None:
                self.held[label].append((Tag(1, host.running.version).text, host.running))

    def _serve_newest(self, node: NodeConfig) -> None:
        held = self.held[node.label]
        self.cluster.hosts[node.label].running = held[-1][1] if held else None

    def versions(self, node: NodeConfig) -> list[Deployed]:
        return [Deployed(tag, "running", 0) for tag, _ in self.held[node.label]]

    def heap(self, node: NodeConfig) -> Heap:
        return Heap(used=10, max=1 << 30)

    def deploy(self, node: NodeConfig, tag: str, war: str, context: str = "") -> None:
        hook = self.cluster.hosts[node.label].before.get("deploy")
        if hook is not None:
            hook()
        self.cluster.events.append((node.label, f"deploy {tag}"))
        parsed = Tag.parse(tag)
        assert parsed is not None, tag
        self.held[node.label].append((tag, self.cluster.releases[parsed.version]))
        self._serve_newest(node)

    def undeploy(self, node: NodeConfig, tag: str) -> None:
        self.cluster.events.append((node.label, f"undeploy {tag}"))
        self.held[node.label] = [(t, r) for t, r in self.held[node.label] if t != tag]
        self._serve_newest(node)
