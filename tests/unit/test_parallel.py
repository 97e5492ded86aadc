"""Parallel deployment's own rules, without a Tomcat: tags that sort, what the manager's
answers mean, which versions retire, and what extensions become on the node.
(The real stack: tests/real/test_parallel.py.)"""

from __future__ import annotations

import dataclasses
import re
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pytest

from fabfile.app import extensions
from fabfile.app.config import NodeConfig
from fabfile.app.credentials import Secret
from fabfile.app.release import Release
from fabfile.app.tag import Tag, following
from fabfile.cluster import http, probe
from fabfile.cluster.manager import Deployed, Heap, Manager
from fabfile.cluster.node import Node
from fabfile.cluster.probe import Status
from fabfile.engine import recording
from fabfile.engine.phase import Phase
from fabfile.engine.plan import Plan
from fabfile.engine.retirement import Held, Retirement
from fabfile.engine.runtimes.parallel import ParallelVersions
from fabfile.engine.target import Outcome, Target
from fabfile.errors import ConfigError, NodeError, NotReady, RolloutError, explain
from fabfile.records.history import Action, History
from tests.fakes import node_configs
from tests.unit.helpers import release
from tests.unit.test_contract import HOSTS, TERMS

# -- tags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "versions", [["9", "10"], ["1.0.9", "1.0.10"], ["2.0", "1.0.125", "10.0-SNAPSHOT"]]
)
def test_a_tag_deployed_later_sorts_later_as_a_string_whatever_the_versions(
    versions: list[str],
) -> None:
    tags: list[Tag] = []
    for version in versions:
        tags.append(following(tags, version))
    texts = [tag.text for tag in tags]
    assert sorted(texts) == texts  # Tomcat's order is the deploy order
    assert [Tag.parse(text) for text in texts] == tags
    assert str(tags[-1]) == f"{versions[-1]} (##{texts[-1]})"


def test_a_tag_is_fixed_width_and_carries_the_version_in_safe_characters() -> None:
    assert Tag(7, "1.2.0").text == "000007-1.2.0"
    assert Tag(7, "1.2.0+build/5 x").text == "000007-1.2.0+build_5_x"
    assert following([Tag(41, "a"), Tag(7, "b")], "1.0").sequence == 42


@pytest.mark.parametrize("text", ["9", "0010", "", "000001", "000001-", "1-1.0"])
def test_tags_this_tool_did_not_write_are_not_read_as_its_own(text: str) -> None:
    assert Tag.parse(text) is None


# -- the manager's answers ------------------------------------------------------------


@pytest.fixture
def node(tmp_path: Path) -> NodeConfig:
    lines = ["hosts = web1", "user = u", "strategy = parallel", "manager_user = deploy"]
    return node_configs(tmp_path, *lines, "war_path = /t/webapps/ROOT.war")[0]


class Answers(Manager):
    """A manager whose answers are given, and which keeps what it was asked."""

    def __init__(self, answers: dict[str, str]) -> None:
        super().__init__(Secret("pw", "test"))
        self.answers = answers
        self.asked: list[str] = []

    def _get(
        self, node: NodeConfig, command: str, what: str = "", whole: str = "", slow: bool = False
    ) -> str:
        self.asked.append(whole or command)
        key = "status" if whole else command.partition("?")[0]
        return self.answers[key]


LIST = (
    "OK - Listed applications for virtual host [localhost]\n"
    "/manager:running:0:/usr/share/tomcat10-admin/manager\n"
    "/:running:2:ROOT##000002-1.0.125\n"
    "/:stopped:0:ROOT##000004-1.0.127\n"
    "/:running:0:ROOT##000003-1.0.126\n"
    "/shop:running:5:shop##000009-3.0\n"
)


def test_versions_are_the_apps_own_context_oldest_tag_first(node: NodeConfig) -> None:
    listed = Answers({"/list": LIST}).versions(node)
    assert [(d.tag, d.state, d.sessions) for d in listed] == [
        ("000002-1.0.125", "running", 2),
        ("000003-1.0.126", "running", 0),
        ("000004-1.0.127", "stopped", 0),
    ]
    assert listed[0].label == "1.0.125 (##000002-1.0.125)"
    assert Deployed("", "running", 0).label == "(no version tag)"


def test_a_deploy_names_the_wars_path_on_the_node_never_uploads_it(node: NodeConfig) -> None:
    manager = Answers({"/deploy": "OK - Deployed"})
    manager.deploy(node, "000005-1.1", "/home/u/releases/shop/versions/000005-1.1.war", "/x.xml")
    assert manager.asked == [
        "/deploy?path=%2F&version=000005-1.1"
        "&war=file%3A%2Fhome%2Fu%2Freleases%2Fshop%2Fversions%2F000005-1.1.war"
        "&config=file%3A%2Fx.xml"
    ]


def test_a_deploy_the_manager_does_not_answer_in_time_names_ready_timeout(
    node: NodeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manager starts the version before it answers a deploy: ready_timeout bounds it."""
    timeouts: list[float] = []

    def silent(method: str, where: str, **kwargs: object) -> None:
        timeouts.append(cast(float, kwargs["read_timeout"]))
        raise http.HttpError(method, where, TimeoutError())

    monkeypatch.setattr(http, "request", silent)
    manager = Manager(Secret("pw", "test"))
    with pytest.raises(NotReady, match=r"did not answer deploying 000005-1.1 within 60 s \(ready"):
        manager.deploy(node, "000005-1.1", "/v/000005-1.1.war")
    with pytest.raises(NodeError, match="does not answer"):  # any other call: connect_timeout
        manager.undeploy(node, "000005-1.1")
    assert timeouts == [node.ready_timeout, node.connect_timeout]


def test_the_heap_is_read_from_the_status_page(node: NodeConfig) -> None:
    page = "<status><jvm><memory free='100' total='300' max='1000'/></jvm></status>"
    heap = Answers({"status": page}).heap(node)
    assert (heap.used, heap.max, heap.free) == (200, 1000, 800)
    with pytest.raises(NodeError, match="shows no heap figures"):
        Answers({"status": "<status/>"}).heap(node)


# -- retire ---------------------------------------------------------------------------


@dataclasses.dataclass
class FakeManager:
    """Versions per node label; undeploy removes one."""

    held: dict[str, list[Deployed]]
    undeployed: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def versions(self, node: NodeConfig) -> list[Deployed]:
        return list(self.held[node.label])

    def undeploy(self, node: NodeConfig, tag: str) -> None:
        self.undeployed.append((node.label, tag))
        self.held[node.label] = [d for d in self.held[node.label] if d.tag != tag]


class Quiet:
    def __init__(self) -> None:
        self.shown: list[list[Held]] = []

    def show(self, left: Sequence[Held], seconds: float) -> None:
        self.shown.append(list(left))

    def note(self, text: str) -> None:
        pass

    def ask(self, question: str, keys: str) -> str:
        return ""


def retire(
    tmp_path: Path,
    held: dict[str, list[Deployed]],
    timeout: float = 0,
    now: bool = False,
    verified: dict[str, str] | None = None,
) -> tuple[FakeManager, list[Held]]:
    nodes = node_configs(
        tmp_path, "hosts = web1, web2", "user = u", "strategy = parallel", "manager_user = m"
    )
    manager = FakeManager(held)
    run = Retirement(manager, nodes, Quiet(), timeout, now, verified or {})  # type: ignore[arg-type]
    return manager, run.run()


A, B, C = "000001-1.0", "000002-1.1", "000003-1.2"


def test_each_host_retires_what_has_no_session_there_and_never_the_newest(
    tmp_path: Path,
) -> None:
    held = {
        "web1": [Deployed(A, "running", 0), Deployed(B, "running", 3), Deployed(C, "running", 0)],
        "web2": [Deployed(B, "running", 0), Deployed(C, "running", 4)],
    }
    manager, left = retire(tmp_path, held)
    assert manager.undeployed == [("web1", A), ("web2", B)]
    assert [(h.node, h.version.tag) for h in left] == [("web1", B)]


def test_retire_now_undeploys_old_versions_with_sessions_but_not_the_newest(
    tmp_path: Path,
) -> None:
    held = {"web1": [Deployed(A, "running", 3), Deployed(B, "running", 1)], "web2": []}
    manager, left = retire(tmp_path, held, timeout=60, now=True)
    assert manager.undeployed == [("web1", A)] and left == []


def test_the_newest_running_version_stays_when_a_newer_one_failed_to_start(
    tmp_path: Path,
) -> None:
    held = {"web1": [Deployed(A, "running", 0), Deployed(B, "stopped", 0)], "web2": []}
    manager, _ = retire(tmp_path, held)
    assert manager.undeployed == [("web1", B)]  # the stopped one serves nobody
    only_stopped = {"web1": [Deployed(A, "stopped", 0)], "web2": []}
    manager, _ = retire(tmp_path, only_stopped)
    assert manager.undeployed == []  # nothing runs: leave it for a person to look at


def test_a_newer_version_never_verified_keeps_the_verified_one_from_retiring(
    tmp_path: Path,
) -> None:
    # a deploy killed after the manager started C, before /status was checked
    held = {
        "web1": [Deployed(A, "running", 0), Deployed(B, "running", 0), Deployed(C, "running", 0)],
        "web2": [Deployed(B, "running", 0), Deployed(C, "running", 0)],
    }
    manager, left = retire(tmp_path, held, now=True, verified={"web1": B, "web2": C})
    assert manager.undeployed == [("web1", A), ("web2", B)]  # web1 keeps B and C
    assert left == []


def test_a_host_whose_manager_fails_is_skipped_and_the_others_retire(tmp_path: Path) -> None:
    held = {"web2": [Deployed(A, "running", 0), Deployed(B, "running", 0)]}
    manager = FakeManager(held)
    real = manager.versions

    def versions(node: NodeConfig) -> list[Deployed]:
        if node.label == "web1":
            raise NodeError("web1: the Tomcat manager at http://web1:8080/manager/text ...")
        return real(node)

    manager.versions = versions  # type: ignore[method-assign]
    nodes = node_configs(tmp_path, "hosts = web1, web2", "user = u")
    run = Retirement(manager, nodes, Quiet(), 0)  # type: ignore[arg-type]
    assert run.run() == [] and manager.undeployed == [("web2", A)]
    assert list(run.failed) == ["web1"]


def test_retire_polls_until_the_last_session_ends(tmp_path: Path) -> None:
    held = {"web1": [Deployed(A, "running", 1), Deployed(B, "running", 0)], "web2": []}
    manager = FakeManager(held)
    looks = 0
    real = manager.versions

    def versions(node: NodeConfig) -> list[Deployed]:
        nonlocal looks
        looks += node.label == "web1"
        if looks == 2:  # the user logged out meanwhile
            manager.held["web1"][0] = Deployed(A, "running", 0)
        return real(node)

    manager.versions = versions  # type: ignore[method-assign]
    nodes = node_configs(tmp_path, "hosts = web1, web2", "user = u")
    left = Retirement(manager, nodes, Quiet(), 10).run()  # type: ignore[arg-type]
    assert left == [] and manager.undeployed == [("web1", A)] and looks == 2


# -- extensions -----------------------------------------------------------------------


def jar(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x/Y.class", b"\xca\xfe")
    return path


def test_extensions_are_listed_by_checksum_and_path(tmp_path: Path) -> None:
    jar(tmp_path / "extensions" / "WEB-INF" / "lib" / "a.jar")
    props = tmp_path / "extensions" / "WEB-INF" / "classes" / "env" / "site.properties"
    props.parent.mkdir(parents=True)
    props.write_text("k=v\n")
    found = extensions.read(tmp_path)
    assert [item.path for item in found] == [
        "WEB-INF/classes/env/site.properties",
        "WEB-INF/lib/a.jar",
    ]
    text = extensions.manifest(found)
    assert extensions.entries(text) == [(item.sha256, item.path) for item in found]
    assert extensions.read(tmp_path / "none") == ()


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("lib/a.jar", "extensions hold WEB-INF/lib/*.jar and WEB-INF/classes/"),
        ("WEB-INF/lib/readme.txt", "not a jar (zip) file"),
        ("WEB-INF/lib/sub/a.jar", "not a jar (zip) file"),
    ],
)
def test_a_file_tomcat_would_not_load_is_refused_with_its_path(
    tmp_path: Path, relative: str, expected: str
) -> None:
    jar(tmp_path / "extensions" / relative)
    with pytest.raises(ConfigError, match=re.escape(expected)) as error:
        extensions.read(tmp_path)
    assert str(tmp_path / "extensions" / relative) in str(error.value)


def test_the_context_file_keeps_the_wars_own_context_and_mounts_the_version_ahead() -> None:
    own = '<Context reloadable="false"><Resources cachingAllowed="false"/><Valve x="1"/></Context>'
    text = extensions.context_xml(own, "/r/versions/000002-1.1")
    assert 'reloadable="false"' in text and '<Valve x="1" />' in text
    assert 'cachingAllowed="false"' in text and text.count("<Resources") == 1
    assert (
        'base="/r/versions/000002-1.1/WEB-INF/lib" webAppMount="/WEB-INF/lib"' in text
        and 'webAppMount="/WEB-INF/classes"' in text
    )
    assert extensions.context_xml("", "/b").startswith("<Context><Resources><PreResources")


# -- the runtime: a version that fails is taken back; the heap check ------------------


MIB = 1024 * 1024


class StubNode:
    """A node that runs every script (recorded) and records a release."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.host = config.host
        self.scripts: list[str] = []
        self.recorded: list[Release] = []
        self.run_id = "run-1"

    def run(self, script: str, what: str, timeout: float | None = None) -> str:
        self.scripts.append(what)
        return ""

    def put_in_place(
        self, script: str, what: str, sources: object = None, stdin: bytes = b""
    ) -> int:
        self.scripts.append(what)
        return 0

    def absolute(self, path: str) -> str:
        return path.replace("~", "/home/u", 1)

    def record(self, release: Release) -> None:
        self.recorded.append(release)


@dataclasses.dataclass
class StubManager:
    listed: list[Deployed]
    heap_used: int = 10 * MIB
    heap_max: int = 100 * MIB
    deploy_error: str = ""
    calls: list[str] = dataclasses.field(default_factory=list)

    def versions(self, node: NodeConfig) -> list[Deployed]:
        return list(self.listed)

    def heap(self, node: NodeConfig) -> Heap:
        return Heap(self.heap_used, self.heap_max)

    def deploy(self, node: NodeConfig, tag: str, war: str, context: str = "") -> None:
        self.calls.append(f"deploy {tag}")
        if self.deploy_error:
            raise NodeError(self.deploy_error)

    def undeploy(self, node: NodeConfig, tag: str) -> None:
        self.calls.append(f"undeploy {tag}")


class Steps:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def set_phase(self, target: Target, phase: Phase, detail: str = "") -> None:
        pass

    def note(self, text: str) -> None:
        self.notes.append(text)


RUNNING = Deployed("000001-1.0.1", "running", 3)


def runtime(
    tmp_path: Path, manager: StubManager, action: Action = Action.DEPLOY, *lines: str
) -> tuple[ParallelVersions, Target, Steps]:
    nodes = node_configs(
        tmp_path, "hosts = web1", "user = u", "strategy = parallel", "manager_user = m", *lines
    )
    plan = Plan(action, release(2), {}, nodes)
    steps = Steps()
    versions = ParallelVersions(plan, steps, manager)  # type: ignore[arg-type]
    target = Target(cast(Node, StubNode(nodes[0])))
    versions.settle(target)
    return versions, target, steps


def test_a_version_that_fails_verification_is_undeployed_and_says_who_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = StubManager([RUNNING])
    versions, target, _ = runtime(tmp_path, manager)
    seen = Status("web1", "http://web1:8080/status", False, "HTTP 500: broken", 500)
    monkeypatch.setattr(probe, "wait_ready", lambda *args, **kwargs: (False, seen, True))
    with pytest.raises(RolloutError) as error:
        versions.make_live(target)
    assert manager.calls == ["deploy 000002-1.0.2", "undeploy 000002-1.0.2"]
    assert "answered 'HTTP 500: broken'" in explain(error.value)
    assert "##000002-1.0.2 was undeployed again; 1.0.1 (##000001-1.0.1) keeps serving" in (
        explain(error.value)
    )
    assert target.outcome == Outcome.FAILED
    assert cast(StubNode, target.node).recorded == []  # not what the node runs


def test_the_managers_refusal_is_quoted_and_what_it_left_is_undeployed(tmp_path: Path) -> None:
    manager = StubManager([RUNNING], deploy_error="web1: the Tomcat manager said: FAIL - nope")
    versions, target, _ = runtime(tmp_path, manager)
    with pytest.raises(RolloutError, match="FAIL - nope"):
        versions.make_live(target)
    assert manager.calls[-1] == "undeploy 000002-1.0.2"


def test_a_ctrl_c_while_verifying_undeploys_the_unverified_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = StubManager([RUNNING])
    versions, target, _ = runtime(tmp_path, manager)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(probe, "wait_ready", interrupted)
    with pytest.raises(KeyboardInterrupt):
        versions.make_live(target)
    assert manager.calls == ["deploy 000002-1.0.2", "undeploy 000002-1.0.2"]
    assert recording._host_record(target).tag == ""  # never verified: no tag to keep


def test_a_verified_version_is_recorded_with_its_tag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = StubManager([RUNNING])
    versions, target, _ = runtime(tmp_path, manager)
    seen = Status("web1", "u", True, "", 200, "com.example:shop", "1.0.2")
    monkeypatch.setattr(probe, "wait_ready", lambda *args, **kwargs: (True, seen, False))
    versions.make_live(target)
    assert manager.calls == ["deploy 000002-1.0.2"]
    assert (target.outcome, target.detail) == (Outcome.DEPLOYED, "as ##000002-1.0.2")
    assert cast(StubNode, target.node).recorded == [release(2)]
    kept = recording._host_record(target)  # the tag in a field of its own, the words as before
    assert (kept.tag, kept.detail) == ("000002-1.0.2", "as ##000002-1.0.2")


def test_a_node_already_on_the_release_is_recorded_with_the_tag_serving(tmp_path: Path) -> None:
    versions, target, _ = runtime(tmp_path, StubManager([RUNNING]))
    target.end(Outcome.UNCHANGED, versions.serving(target))  # as the strategy does
    kept = recording._host_record(target)
    assert (kept.tag, kept.detail) == ("000001-1.0.1", "as ##000001-1.0.1")


@pytest.mark.parametrize(
    ("used", "running", "setting", "refused"),
    [
        (40, 1, "", False),  # 40 in use by 1 version: 60 free >= 40
        (60, 1, "", True),  # 40 free < 60
        (60, 2, "", False),  # 60 by 2 versions: 30 each, 40 free
        (10, 1, "version_heap_mb = 95", True),
    ],
)
def test_one_more_version_must_fit_the_heap(
    tmp_path: Path, used: int, running: int, setting: str, refused: bool
) -> None:
    listed = [Deployed(f"00000{i}-1.0.{i}", "running", 0) for i in range(1, running + 1)]
    manager = StubManager(listed, heap_used=used * MIB)
    lines = (setting,) if setting else ()
    if refused:
        with pytest.raises(NodeError, match=r"one more version needs about .* MiB of heap"):
            runtime(tmp_path, manager, Action.DEPLOY, *lines)
        _, _, steps = runtime(tmp_path, manager, Action.ROLLBACK, *lines)
        assert "rolling back anyway" in steps.notes[0]  # a way back is never refused
    else:
        runtime(tmp_path, manager, Action.DEPLOY, *lines)


def test_a_version_not_ready_in_time_names_ready_timeout_and_is_undeployed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = StubManager([RUNNING])
    versions, target, _ = runtime(tmp_path, manager, Action.DEPLOY, "ready_timeout = 7")
    old = Status("web1", "http://web1:8080/status", True, "", 200, "com.example:shop", "1.0.1")
    monkeypatch.setattr(probe, "wait_ready", lambda *args, **kwargs: (False, old, False))
    with pytest.raises(NotReady) as error:  # the rollout adds what the node needed before
        versions.make_live(target)
    assert "web1: not verified within 7 s (ready_timeout): " in str(error.value)
    assert manager.calls == ["deploy 000002-1.0.2", "undeploy 000002-1.0.2"]
    assert target.outcome == Outcome.FAILED


def test_the_rollout_says_where_ready_timeout_is_set_and_what_versions_took_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = TERMS["parallel"].world(tmp_path, monkeypatch)
    world.cluster.hosts[HOSTS[0]].before["deploy"] = lambda: time.sleep(0.06)
    world.run()  # a first run records how long each version took to start
    took = History(world.app.history_path).records()[-1].hosts[HOSTS[0]].restart_to_ready
    assert took is not None and took > 0
    seen = Status(HOSTS[0], "u", True, "", 200, "com.example:shop", "0")
    monkeypatch.setattr(probe, "wait_ready", lambda *args, **kwargs: (False, seen, False))
    with pytest.raises(NotReady) as error:
        world.run(release(3))
    text = explain(error.value)
    assert "not verified within 0.3 s (ready_timeout)" in text
    assert "The limit was ready_timeout = 0.3 s (" in text and ".config:" in text
    assert f"{HOSTS[0]} took {took:.1f} s from deploy to ready in its last recorded runs" in text
