"""SIGTERM, SIGHUP and SIGKILL in the phases test_signals.py and test_runrecord.py leave
out, on the real stack, under a paced load through haproxy: rolling's drain and
warm-up (Jetty), blue/green's switch and parallel's auto-retire (Tomcat).

Each case is followed by status (it tells the truth: what it shows each node runs is
what the node's own /status says), the same command again (it finishes: every node on
the new release) and ``deploy rollback`` (every node back on the release live before
the signalled run). Each strategy promises zero downtime in these phases, a SIGKILL
included (a node it leaves half-way still serves, or haproxy sends it nothing), so the
load sees no failed request.

The signals are rotated rather than crossed with every phase (the suite's time):
each of the three appears, and each phase once.

Drain and switch last milliseconds; so that the signal lands in them, and not just
after, haproxy's runtime API is reached through `HeldAnswer`: a relay that passes every
command on to haproxy at once, but keeps the answer to one chosen command until the
signal is sent. haproxy's state is the real one; the run is held where it waits for
that answer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from sandbox import app, cluster
from sandbox.sample import build_war
from tests import cli
from tests.real import helpers
from tests.real import test_blue_green as blue_green
from tests.real import test_parallel as parallel
from tests.real.helpers import TomcatSandbox, all_on, history, kill_when, versions
from tests.real.test_batches import Load
from tests.real.test_batches import set_keys as set_deploy_keys
from tests.real.test_blue_green import NEW, OLD
from tests.real.test_blue_green_now import Paced

pytestmark = pytest.mark.real
REPO = Path(__file__).resolve().parents[2]
WAR = "search-web-frontend-{}.war"
CODES = {signal.SIGTERM: 143, signal.SIGHUP: 129, signal.SIGKILL: -signal.SIGKILL}

# this module's own blue/green and parallel sandboxes, built as their modules build them
bg, bg_app_dir = blue_green.bg, blue_green.app_dir
par, par_app_dir = parallel.par, parallel.app_dir


@dataclasses.dataclass(frozen=True)
class Case:
    strategy: str
    phase: str
    number: signal.Signals

    def __str__(self) -> str:
        return f"{self.strategy}-{self.phase}-{self.number.name}"


CASES = [
    Case("rolling", "draining", signal.SIGHUP),
    Case("rolling", "warming up", signal.SIGKILL),
    Case("blue-green", "switching", signal.SIGTERM),
    Case("parallel", "retire", signal.SIGHUP),
]


class HeldAnswer:
    """A Unix socket in front of haproxy's runtime API. Every command goes on to haproxy
    at once; haproxy's answer to the first that ``holds`` accepts is kept until `release`
    (or 10 s), so the run that sent it waits in its phase."""

    def __init__(self, real: Path, holds: Callable[[str], bool]) -> None:
        self.real, self.holds = real, holds
        self.directory = Path(tempfile.mkdtemp(prefix="held-"))  # a short path for AF_UNIX
        self.path = self.directory / "haproxy.sock"
        self.held, self.released = threading.Event(), threading.Event()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        self.listener.listen(32)
        self.commands: list[str] = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        with conn:
            asked = b""
            while not asked.endswith(b"\n") and (chunk := conn.recv(65536)):
                asked += chunk
            command = asked.decode().strip()
            self.commands.append(command)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
                upstream.connect(str(self.real))
                upstream.sendall(asked)
                answer = b""
                while chunk := upstream.recv(65536):
                    answer += chunk
            if not self.held.is_set() and self.holds(command):
                self.held.set()
                self.released.wait(10)
            with contextlib.suppress(OSError):  # the run was stopped and closed its end
                conn.sendall(answer)

    def wait_held(self) -> None:
        assert self.held.wait(10), f"haproxy was not asked: {self.commands[-5:]}"

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.accepting.join()
        self.path.unlink(missing_ok=True)
        self.directory.rmdir()


@pytest.fixture
def relays() -> Iterator[list[HeldAnswer]]:
    made: list[HeldAnswer] = []
    yield made
    for relay in made:
        relay.close()


def through(relays: list[HeldAnswer], app_dir: Path, holds: Callable[[str], bool]) -> HeldAnswer:
    """Point the app directory's lb_socket at a new `HeldAnswer` in front of haproxy's."""
    config = app_dir / ".config"
    text = config.read_text()
    real = re.search(r"^lb_socket = (.+)$", text, re.MULTILINE)
    assert real, text
    relay = HeldAnswer(Path(real[1]), holds)
    relays.append(relay)
    config.write_text(text.replace(real[0], f"lb_socket = {relay.path}"))
    return relay


def signalled(
    argv: list[str],
    app_dir: Path,
    case: Case,
    when: Callable[[str], bool],
    relay: HeldAnswer | None = None,
) -> str:
    """Run ``deploy ARGV`` and send the case's signal at the first line ``when`` accepts,
    while ``relay`` holds the run in that phase; check the exit code; the output."""
    if case.number == signal.SIGKILL:
        return kill_when(["deploy", *argv], app_dir, when)
    held = (relay.wait_held, relay.release) if relay else ()
    code, took, told = helpers.signal_when(["deploy", *argv], app_dir, case.number, when, *held)
    assert code == CODES[case.number], told
    assert took < 2.0, (took, told)
    return told


def shown(status: str, addresses: Sequence[str]) -> dict[str, tuple[str, str]]:
    """What the rolling status table shows for each node: (haproxy, version)."""
    found = {}
    for line in status.splitlines():
        words = line.split()
        for address in addresses:
            if words and words[0] == f"http://{address}:8080/status":
                found[address] = (words[2], words[4])
    return found


def phase_of(host: str, phase: str) -> Callable[[str], bool]:
    """A progress line saying ``host`` enters ``phase``."""

    def says(line: str) -> bool:
        words = line.split()
        return words[1:2] == [host] and " ".join(words[2:]).startswith(phase)

    return says


# -- rolling (Jetty) --------------------------------------------------------------------


def rolling_case(case: Case, request: pytest.FixtureRequest, relays: list[HeldAnswer]) -> None:
    sandbox: cluster.Cluster = request.getfixturevalue("sandbox")
    app_dir: Path = request.getfixturevalue("on_125")
    capsys: pytest.CaptureFixture[str] = request.getfixturevalue("capsys")
    first, second, third = sandbox.addresses
    new = WAR.format("1.0.126")
    relay = None
    if case.phase == "draining":  # held while haproxy is asked to drain the second node
        relay = through(relays, app_dir, lambda command: "web/node2 state drain" in command)
    if case.phase == "warming up":  # the second node's weight ramps up for 3 s
        set_deploy_keys(app_dir, warmup="3")
    before = len(history(app_dir))
    with Load(sandbox) as load:
        told = signalled([new], app_dir, case, phase_of(second, case.phase), relay)
        load.sample()  # haproxy now: a SIGKILL mid-ramp leaves the node at its first weight
        weight = 33 if case.phase == "warming up" else 100
        assert load.samples[-1]["node2"] == ("UP", weight), load.samples[-1]
        entry = history(app_dir)[-1]
        assert len(history(app_dir)) == before + 1, told
        status = cli.run([], app_dir, capsys)
        now = versions(sandbox)
        table = shown(status.out, sandbox.addresses)
        assert {a: v for a, (_, v) in table.items()} == now, status.text  # the truth
        if case.number == signal.SIGKILL:
            assert entry["outcome"] == "cut off", entry
            assert now == {first: "1.0.126", second: "1.0.126", third: "1.0.125"}, told
            notice = status.out[status.out.index(f"Run {before + 1} ") :].splitlines()
            assert notice[0].endswith(
                f"was cut off in phase '{case.phase}' on {second}: no end was recorded."
            ), status.out
            assert notice[1] == f"  {first}: deployed (done); now runs 1.0.126, haproxy UP"
            assert notice[2].startswith(f"  {second}: "), notice
            assert notice[2].endswith(f"({case.phase}); now runs 1.0.126, haproxy UP"), notice
            assert notice[3] == f"  {third}: untouched (staged); now runs 1.0.125, haproxy UP"
            assert f"lock: held on {', '.join(sandbox.addresses)} by " in status.out, status.out
            again = cli.run([new, "--lock-wait", "60"], app_dir, capsys)  # the killed run's lease
        else:
            assert entry["outcome"] == "interrupted", entry
            where = f"interrupted at node {second} in phase '{case.phase}' by {case.number.name}"
            assert where in entry["message"], entry["message"]
            assert now == {first: "1.0.126", second: "1.0.125", third: "1.0.125"}, told
            assert status.code == 0, status.text  # the node not yet restarted went back in
            assert {h for h, _ in table.values()} == {"UP"}, status.out
            again = cli.run([new], app_dir, capsys)
        assert again.code == 0, again.text
        assert versions(sandbox) == all_on(sandbox, "1.0.126")
        back = cli.run(["rollback"], app_dir, capsys)
        assert back.code == 0, back.text
        assert versions(sandbox) == all_on(sandbox, "1.0.125"), back.text
    assert load.failed == [], load.failed[:5]
    assert load.served > 100
    assert load.samples[-1] == dict.fromkeys(("node1", "node2", "node3"), ("UP", 100))
    settled = cli.run([], app_dir, capsys)
    assert settled.code == 0 and "cut off" not in settled.out, settled.text


# -- blue/green (Tomcat) ----------------------------------------------------------------


def blue_green_case(case: Case, request: pytest.FixtureRequest, relays: list[HeldAnswer]) -> None:
    """Held while haproxy is asked to put the last host's new colour in rotation: the
    first host switched, the last one half-way (its new colour in, the old one not out)."""
    bg: TomcatSandbox = request.getfixturevalue("bg")
    app_dir: Path = request.getfixturevalue("bg_app_dir")
    capsys: pytest.CaptureFixture[str] = request.getfixturevalue("capsys")
    before = blue_green.live(app_dir, capsys)
    targets = blue_green.idle_of(before)
    last = targets[-1]
    server = last.replace("/", "-")  # lb_server's default: host-instance
    relay = through(relays, app_dir, lambda command: f"web/{server} state ready" in command)
    fresh = str(build_war(NEW, app_dir / "fresh", artifact_id=app.APP, container="tomcat"))
    with Paced(bg.url()) as load:
        signalled([fresh], app_dir, case, phase_of(last, "switching"), relay)
        entry = history(app_dir)[-1]
        assert entry["outcome"] == "interrupted", entry
        where = f"interrupted at node {last} in phase 'switching' by {case.number.name}"
        assert where in entry["message"], entry["message"]
        assert entry["hosts"][targets[0]]["outcome"] == "live", entry["hosts"]
        status = cli.run([], app_dir, capsys)
        rows = blue_green.rows(app_dir, capsys)
        answers = {f"{a}/{c}": answer(bg.page(a, c)) for a, c in bg.tomcats.all()}
        assert {h: r["version"] for h, r in rows.items()} == answers, status.text  # the truth
        assert answers[targets[0]] == answers[last] == NEW
        # the last host half-way: its new colour in rotation, its old one not yet out
        host = last.partition("/")[0]
        assert {h for h, r in rows.items() if r["live"]} == {
            targets[0],
            last,
            *(h for h in before if h.startswith(f"{host}/")),
        }, status.text
        again = cli.run([fresh], app_dir, capsys)
        assert again.code == 0, again.text
        assert sorted(blue_green.live(app_dir, capsys)) == sorted(targets)
        assert blue_green.served(bg) == NEW
        back = cli.run(["rollback"], app_dir, capsys)
        assert back.code == 0, back.text
        assert sorted(blue_green.live(app_dir, capsys)) == sorted(before)
        assert blue_green.served(bg) == OLD
    assert load.failures() == [], load.failures()
    assert len(load.results) > 100


def answer(page: str) -> str:
    """The version a /status page says (its first line ends with it)."""
    return page.partition("\n")[0].split()[-1]


# -- parallel (Tomcat) ------------------------------------------------------------------


def parallel_case(case: Case, request: pytest.FixtureRequest, relays: list[HeldAnswer]) -> None:
    """The deploy is done; its auto-retire waits for a logged-in user of the old version."""
    par: TomcatSandbox = request.getfixturevalue("par")
    app_dir: Path = request.getfixturevalue("par_app_dir")
    capsys: pytest.CaptureFixture[str] = request.getfixturevalue("capsys")
    parallel.set_keys(app_dir, retire="auto", retire_timeout="60")
    alice, home = parallel.logged_in(par)
    other = next(a for a in par.addresses if a != home)
    new = par.wars[NEW].name
    with Paced(par.url()) as load:
        signalled([new], app_dir, case, lambda line: "holds 1 session(s)" in line)
        deployed, retire = history(app_dir)[-2:]
        assert (deployed["action"], deployed["outcome"]) == ("deploy", "ok"), deployed
        assert (retire["action"], retire["outcome"]) == ("retire", "interrupted"), retire
        assert f"retire interrupted by {case.number.name}" in retire["message"], retire
        status = cli.run([], app_dir, capsys)
        assert status.code == 0, status.text
        assert parallel.versions(app_dir, capsys) == {home: [OLD, NEW], other: [NEW]}
        assert parallel.uses(par, alice) == OLD and parallel.served(par) == {NEW}  # the truth
        assert alice.post(par.url("/logout"), timeout=5).status_code == 200
        again = cli.run([new], app_dir, capsys)
        assert again.code == 0, again.text
        assert parallel.versions(app_dir, capsys) == {a: [NEW] for a in par.addresses}
        back = cli.run(["rollback"], app_dir, capsys)
        assert back.code == 0, back.text
        assert parallel.versions(app_dir, capsys) == {a: [OLD] for a in par.addresses}
        assert parallel.served(par) == {OLD}
    assert load.failures() == [], load.failures()
    assert len(load.results) > 100


RUN = {"rolling": rolling_case, "blue-green": blue_green_case, "parallel": parallel_case}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_signal_then_status_the_same_command_and_rollback(
    case: Case,
    request: pytest.FixtureRequest,
    relays: list[HeldAnswer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the `deploy` processes run this code
    RUN[case.strategy](case, request, relays)
