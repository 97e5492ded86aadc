"""Several balancers kept in step (`fabfile.cluster.balancers`), and where each one is
(`fabfile.app.endpoints`). The real haproxys over SSH: tests/real/test_balancers_over_ssh.py."""

from __future__ import annotations

import dataclasses
import functools
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

import pytest

from fabfile.app.config import NodeConfig, load
from fabfile.app.endpoints import Endpoint, choose, parse
from fabfile.cluster.balancer import Admin, Balancer, Counters, State
from fabfile.cluster.balancers import Balancers, worst
from fabfile.cluster.inflight import Stopped
from fabfile.cluster.lbhost import CHANNELS, Remote
from fabfile.engine.strategies import rolling
from fabfile.engine.target import Target
from fabfile.errors import ConfigError, NodeError
from tests.fakes import node_configs


class Haproxy:
    """A `Channel` that answers the runtime API commands a `Balancer` sends, for one
    backend ``web``; ``down``: it answers nothing (its host is unreachable)."""

    def __init__(self, name: str, labels: list[str]) -> None:
        self.name = name
        self.status = dict.fromkeys(labels, "UP")
        self.lines: list[str] = []
        self.down = False
        self.ignores: set[str] = set()  # servers whose state changes it accepts but drops
        self.saved: list[str] = []

    def send(self, line: str) -> str:
        if self.down:
            raise NodeError(f"{self.name}: sshd at {self.name}:22 refused the connection")
        self.lines.append(line)
        for command in line.split(";"):
            words = command.split()
            if words[:2] == ["set", "server"] and words[3] == "state":
                server = words[2].split("/")[1]
                if server not in self.ignores:
                    self.status[server] = {"ready": "UP", "drain": "DRAIN", "maint": "MAINT"}[
                        words[4]
                    ]
        if line == "show servers state web":
            rows = [f"3 web {i} {n.host} {n.address} {_port(n)}" for i, n in enumerate(_nodes())]
            return "1\n# be_id be_name srv_id srv_name srv_addr srv_port\n" + "\n".join(rows)
        if line == "show stat":
            rows = [f"web,{server},0,{s},{7}" for server, s in self.status.items()]
            return "# pxname,svname,scur,status,lbtot\n" + "\n".join(rows) + "\n"
        return ""

    def write_states(self, path: str) -> None:
        self.saved.append(path)


def _port(node: NodeConfig) -> int:
    return urllib.parse.urlsplit(node.url).port or 80


@functools.cache
def _nodes() -> tuple[NodeConfig, ...]:
    with tempfile.TemporaryDirectory() as where:
        read = node_configs(Path(where), "hosts = web1, web2", "lb_socket = /s", "lb_backend = web")
    return tuple(dataclasses.replace(n, drain_timeout=0.1) for n in read)


def _pair(state_file: str = "") -> tuple[Balancers, Haproxy, Haproxy]:
    one, two = Haproxy("lb1", ["web1", "web2"]), Haproxy("lb2", ["web1", "web2"])
    members = [Balancer(one, state_file), Balancer(two, state_file)]
    return Balancers(members), one, two


def test_every_change_goes_to_every_balancer_and_is_read_back() -> None:
    balancers, one, two = _pair("/var/lib/haproxy/state")
    web1 = _nodes()[0]
    balancers.set_state(web1, Admin.MAINT)
    assert one.status["web1"] == two.status["web1"] == "MAINT"
    assert one.saved and two.saved  # each writes its own state file, on its own host
    balancers.ready(web1)
    assert one.status["web1"] == two.status["web1"] == "UP"


def test_a_balancer_that_does_not_take_a_change_stops_the_run_naming_it() -> None:
    balancers, _, two = _pair()
    two.ignores.add("web1")
    with pytest.raises(NodeError, match=r"balancer lb2: web1 is UP after 'state maint'"):
        balancers.set_state(_nodes()[0], Admin.MAINT)


def test_an_unreachable_balancer_is_named_with_the_way_to_leave_it_out() -> None:
    balancers, _, two = _pair()
    two.down = True
    with pytest.raises(NodeError) as raised:
        balancers.mismatches(_nodes())
    said = str(raised.value)
    assert said.startswith("balancer lb2: sshd at lb2:22 refused the connection")
    assert "leave it out with --lb lb1" in said


def test_the_balancers_disagreeing_on_a_node_is_a_problem_and_the_worst_view_counts() -> None:
    balancers, _, two = _pair()
    nodes = _nodes()
    assert balancers.mismatches(nodes) == []
    two.status["web2"] = "MAINT"
    problems = balancers.mismatches(nodes)
    assert problems == [
        "web2: the balancers disagree (lb1 UP, lb2 MAINT); make them agree (set the "
        "server's state in each haproxy) or leave one out with --lb"
    ]
    assert balancers.states(nodes) == {"web1": State.UP, "web2": State.MAINT}
    two.status["web2"] = "DOWN"  # health checks: not an operator's choice, not flagged
    assert balancers.mismatches(nodes) == []


def test_counters_are_added_over_the_balancers() -> None:
    balancers, _, _ = _pair()
    assert balancers.counters(_nodes())["web1"] == Counters(requests=14, errors=0)


def test_worst_is_the_view_furthest_from_serving() -> None:
    assert worst([State.UP, State.DOWN]) == State.DOWN
    assert worst([State.DRAIN, State.MAINT, State.UP]) == State.MAINT
    assert worst([State.UP, State.UNREACHABLE]) == State.UNREACHABLE


def test_lb_socket_entries_say_where_each_balancer_is() -> None:
    found = parse("/run/haproxy.sock, lb1:/run/haproxy/admin.sock, 10.0.0.9:9999")
    assert [(e.name, e.socket, e.remote, e.tcp) for e in found] == [
        ("/run/haproxy.sock", "/run/haproxy.sock", False, False),
        ("lb1", "/run/haproxy/admin.sock", True, False),
        ("10.0.0.9:9999", "10.0.0.9:9999", False, True),
    ]
    assert found[1].state_file("/var/lib/haproxy/{balancer}.state") == (
        "/var/lib/haproxy/lb1.state"
    )


def test_a_balancer_host_is_reached_with_deploys_ssh_settings(tmp_path: Path) -> None:
    path = tmp_path / ".config"
    path.write_text(
        "[deploy]\nhosts = web1\nuser = deploy\nbecome_user = root\nport = 2222\n"
        "lb_socket = lb1:/run/haproxy/admin.sock, /run/local.sock\nlb_backend = web\n"
        "[host:web1]\nuser = other\n"
    )
    config = load(path)
    assert list(config.balancer_hosts) == ["lb1"]
    lb1 = config.balancer_hosts["lb1"]
    assert (lb1.host, lb1.user, lb1.port, lb1.become_user) == ("lb1", "deploy", 2222, "root")


def test_lb_chooses_balancers_by_name() -> None:
    found = (Endpoint("lb1", "/a"), Endpoint("lb2", "/b"))
    assert choose(found, None) == found
    assert choose(found, ("lb2",)) == (found[1],)
    with pytest.raises(ValueError, match="--lb names lb3; lb_socket has: lb1, lb2"):
        choose(found, ("lb3",))


def test_the_plan_names_the_balancers_those_left_out_and_warns_of_tcp() -> None:
    chosen = (Endpoint("lb1", "/s", remote=True), Endpoint("10.0.0.9:9999", "10.0.0.9:9999"))
    members = [Balancer(Haproxy(e.name, [])) for e in chosen]
    lines = Balancers(members, ("lb2",), chosen).plan_lines()
    assert lines[0] == (
        "balancers: lb1 (/s over SSH), 10.0.0.9:9999 (TCP, unauthenticated); left out by "
        "--lb: lb2 (not changed by this run)"
    )
    assert "anyone who reaches it can take every server out of rotation" in lines[1]
    here = (Endpoint("/s", "/s"),)
    assert Balancers([Balancer("/s")], (), here).plan_lines() == []


class _Looked:
    """What `Remote._run` answers, by whether the script runs through sudo."""

    def __init__(self, plain: str, through_sudo: str = "") -> None:
        self.plain, self.through_sudo = plain, through_sudo
        self.scripts: list[str] = []

    def __call__(self, script: str, what: str, stdin: bytes) -> str:
        self.scripts.append(script)
        return self.through_sudo if script.startswith("sudo -n") else self.plain


def _remote(become_user: str, looked: _Looked, monkeypatch: pytest.MonkeyPatch) -> Remote:
    host = dataclasses.replace(_nodes()[0], host="lb1", become_user=become_user)
    remote = Remote(Endpoint("lb1", "/run/haproxy/admin.sock", remote=True), host)
    monkeypatch.setattr(remote, "_run", looked)
    return remote


@pytest.mark.parametrize(
    ("become_user", "plain", "through_sudo", "prefix"),
    [
        ("", "writable", "", ""),  # the SSH user is in haproxy's group
        ("root", "", "writable", "sudo -n -u root -- "),  # Debian's root:haproxy 660
    ],
)
def test_the_socket_is_used_as_whoever_may_write_it(
    monkeypatch: pytest.MonkeyPatch, become_user: str, plain: str, through_sudo: str, prefix: str
) -> None:
    looked = _Looked(plain, through_sudo)
    remote = _remote(become_user, looked, monkeypatch)
    remote.send("show stat")
    assert looked.scripts[-1].startswith(f"{prefix}socat -t 5 - UNIX-CONNECT:")
    remote.send("show info")  # looked at once per command
    assert len([s for s in looked.scripts if "command -v socat" in s]) == (2 if prefix else 1)


@pytest.mark.parametrize(
    ("become_user", "plain", "through_sudo", "said"),
    [
        ("root", "no-socat", "", "socat is not installed there; install it"),
        ("", "", "", "[a-z-]+ may not write it; set become_user"),
        ("root", "", "no-socket", "no such socket; is haproxy running there"),
    ],
)
def test_a_socket_that_cannot_be_used_is_refused_saying_why(
    monkeypatch: pytest.MonkeyPatch, become_user: str, plain: str, through_sudo: str, said: str
) -> None:
    remote = _remote(become_user, _Looked(plain, through_sudo), monkeypatch)
    with pytest.raises(NodeError, match=f"balancer lb1: /run/haproxy/admin.sock: {said}"):
        remote.send("show stat")


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("lb_state_file = ~/haproxy.state", "is written on lb1 over SSH: give an absolute path"),
        ("lb_state_file = state/haproxy", "is written on lb1 over SSH: give an absolute path"),
    ],
)
def test_a_state_file_on_a_balancer_host_is_a_path_of_that_host(
    tmp_path: Path, line: str, said: str
) -> None:
    path = tmp_path / ".config"
    path.write_text(
        "[deploy]\nhosts = web1\nlb_socket = lb1:/run/haproxy/admin.sock\nlb_backend = web\n"
        f"{line}\n"
    )
    with pytest.raises(ConfigError, match=said):
        load(path)


def test_a_balancer_host_takes_no_user_in_lb_socket(tmp_path: Path) -> None:
    path = tmp_path / ".config"
    path.write_text("[deploy]\nhosts = web1\nlb_socket = ops@lb1:/run/h.sock\nlb_backend = b\n")
    with pytest.raises(ConfigError, match="expected a Unix socket path, HOST:/socket/path"):
        load(path)


def test_no_more_channels_at_once_than_sshd_allows_on_one_balancers_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = dataclasses.replace(_nodes()[0], host="lb1")
    remote = Remote(Endpoint("lb1", "/run/haproxy/admin.sock", remote=True), host)
    remote._prefix = ""  # the socket looked at already
    at_once, most = [0], [0]
    guard = threading.Lock()

    def execute(script: str, what: str, timeout: float, stdin: bytes) -> SimpleNamespace:
        with guard:
            at_once[0] += 1
            most[0] = max(most[0], at_once[0])
        time.sleep(0.02)
        with guard:
            at_once[0] -= 1
        return SimpleNamespace(exited=0, stdout="", stderr="")

    monkeypatch.setattr(remote.session, "_exec", execute)
    workers = [threading.Thread(target=remote.send, args=("show stat",)) for _ in range(20)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert most[0] == CHANNELS


def test_a_balancer_out_of_reach_after_ctrl_c_leaves_a_note_and_the_mark() -> None:
    """After Ctrl-C a balancer over SSH can no longer be reached (the run's connections
    are cut): the node stays taken out, said, and the next run puts it back."""

    class Cut(Haproxy):
        def send(self, line: str) -> str:
            raise Stopped

    node = _nodes()[0]
    target = Target(SimpleNamespace(config=node), None, None)  # type: ignore[arg-type]
    error = KeyboardInterrupt()
    back = rolling._out_of_rotation(Balancers([Balancer(Cut("lb1", []))]), target, error)
    assert back is False
    assert error.__notes__ == [
        "web1 could not be set to ready in haproxy (web/web1): stopped: the run was "
        "interrupted; it takes no traffic until a deploy or rollback verifies it."
    ]


def test_a_change_made_in_one_balancer_only_says_so() -> None:
    balancers, one, two = _pair()
    two.down = True
    with pytest.raises(NodeError) as raised:
        balancers.set_state(_nodes()[0], Admin.MAINT)
    assert one.status["web1"] == "MAINT"
    assert raised.value.__notes__ == [
        "web1: state maint was made in lb1 already and not in lb2: `deploy status` shows "
        "each one's view"
    ]
