"""Blue/green acts only on what is true now, on the real stack (the blue/green sandbox of
test_blue_green.py: two hosts with a blue and a green Tomcat 10 each, sessions replicated,
haproxy in front), under a paced load through haproxy with a user logged in.

- haproxy restarted mid-deploy without its state file comes back with blue live on
  every host: the run stops before restarting a colour that is live now, says what
  changed, and the load sees no failure the tool caused; the same command then finishes.
- a switch refused because the idle colour never joined the live one's cluster: once
  its server.xml is fixed, the same command finishes (the idle colour is restarted).
- colour ports swapped in ``.config``: status exits non-zero naming status_url, and
  pre-flight refuses naming status_url too.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import requests

from fabfile.view.progress import PlainReporter
from sandbox import app, haproxy, tomcat, tomcat_conf
from sandbox.sample import build_war
from tests import cli
from tests.real import test_blue_green as blue_green
from tests.real.helpers import TomcatSandbox as Sandbox
from tests.real.helpers import history, verdicts
from tests.real.test_blue_green import (
    NEW,
    OLD,
    idle_of,
    live,
    logged_in,
    served,
    set_deploy_key,
    whoami,
)

pytestmark = pytest.mark.real

bg = blue_green.bg  # the module's own sandbox, built as test_blue_green builds it
app_dir = blue_green.app_dir


@dataclasses.dataclass
class Outage:
    """A stretch of time when haproxy itself was down (not the tool's doing)."""

    began: float
    ended: float = float("inf")


class Paced(threading.Thread):
    """Paced requests through haproxy by new users (no cookie), each one timed."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.results: list[tuple[float, float, str]] = []  # sent, answered, '' or what failed
        self.stop = threading.Event()

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    answer = session.get(self.url, timeout=5)
                    failed = "" if answer.status_code == 200 else f"HTTP {answer.status_code}"
                except requests.RequestException as error:
                    failed = type(error).__name__
                self.results.append((sent, time.monotonic(), failed))
                session.cookies.clear()
                time.sleep(0.005)

    def failures(self, outages: Sequence[Outage] = ()) -> list[str]:
        """What failed, but for requests in flight while haproxy itself was down."""
        return [
            f"{failed} at +{sent - self.results[0][0]:.2f} s"
            for sent, answered, failed in self.results
            if failed and not any(sent <= o.ended and answered >= o.began for o in outages)
        ]

    def __enter__(self) -> Paced:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()


def on_note(monkeypatch: pytest.MonkeyPatch, starts: str, action: Callable[[], None]) -> None:
    """Run ``action`` once, when the run notes a line starting with ``starts``."""
    original = PlainReporter.note
    fired = False

    def note(self: PlainReporter, text: str) -> None:
        nonlocal fired
        original(self, text)
        if text.startswith(starts) and not fired:
            fired = True
            action()

    monkeypatch.setattr(PlainReporter, "note", note)


def restart_haproxy_without_its_state_file(bg: Sandbox, outages: list[Outage]) -> None:
    """Stop the sandbox's haproxy by its PID, lose its state file, start it again as the
    sandbox starts it (from haproxy.cfg: blue in rotation, green disabled, on every host);
    the outage lasts until haproxy answers through its frontend again."""
    nodes = bg.tomcats.cluster
    outage = Outage(time.monotonic())
    outages.append(outage)
    haproxy.down(nodes)
    haproxy.state_path(nodes).unlink(missing_ok=True)
    haproxy.up(nodes, haproxy.tomcat_config_text(bg.tomcats))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if requests.get(bg.url(), timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.02)
    outage.ended = time.monotonic()


def green_live(bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Make green the live colour of every host (haproxy.cfg's default is blue)."""
    if any(host.endswith("/blue") for host in live(app_dir, capsys)):
        done = cli.run([bg.wars[NEW].name], app_dir, capsys)
        assert done.code == 0, done.text
    now = live(app_dir, capsys)
    assert sorted(now) == [f"{a}/green" for a in bg.addresses], now
    return now


def test_haproxy_restarted_without_its_state_file_stops_the_run_before_a_live_colour(
    bg: Sandbox,
    app_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = bg.addresses
    green_live(bg, app_dir, capsys)
    set_deploy_key(app_dir, "idle_starts", "1")  # one host after another: a second turn
    user = logged_in(bg)
    fresh = build_war(OLD, app_dir / "fresh", artifact_id=app.APP, container="tomcat")
    outages: list[Outage] = []
    # host 1's blue is verified; before host 2's turn, haproxy restarts from its config
    on_note(monkeypatch, "batch 2/2", lambda: restart_haproxy_without_its_state_file(bg, outages))
    jvms = bg.jvms()
    with Paced(bg.url()) as load:
        result = cli.run([str(fresh)], app_dir, capsys)
        time.sleep(2)  # a colour restarted by mistake would fail requests by now
    monkeypatch.undo()
    assert result.code == 1, result.text
    assert len(outages) == 1, result.text
    assert (
        f"error: {second}: haproxy's state changed during the run ({second}/blue was MAINT, "
        f"now UP; {second}/green was UP, now MAINT): {second}/blue is in rotation now, so it "
        "was not restarted"
    ) in result.err
    assert "without its server-state file (lb_state_file)" in result.err
    assert "This run switched nothing and restarted no colour in rotation" in result.err
    assert bg.jvms()[f"{second}/blue"] == jvms[f"{second}/blue"]  # never restarted
    assert bg.jvms()[f"{first}/blue"] != jvms[f"{first}/blue"]  # idle when it was
    assert load.failures(outages) == [], load.failures(outages)
    assert len(load.results) > 200
    entry = history(app_dir)[-1]
    assert entry["outcome"] == "failed"
    assert entry["hosts"][f"{second}/blue"]["outcome"] == "untouched"
    assert whoami(bg, user) == (200, "alice")

    # status tells the truth: blue serves on both hosts now, whatever the run expected
    assert sorted(live(app_dir, capsys)) == [f"{a}/blue" for a in bg.addresses]
    # the same command again finishes from what haproxy holds now, restarting no live colour
    jvms = bg.jvms()
    with Paced(bg.url()) as load:
        again = cli.run([str(fresh)], app_dir, capsys)
    assert again.code == 0, again.text
    assert load.failures() == []
    assert sorted(live(app_dir, capsys)) == [f"{first}/blue", f"{second}/green"]
    assert bg.jvms()[f"{first}/blue"] == jvms[f"{first}/blue"]  # live: not restarted
    assert bg.jvms()[f"{second}/blue"] == jvms[f"{second}/blue"]
    assert served(bg) == OLD and whoami(bg, user) == (200, "alice")
    assert haproxy.state_path(bg.tomcats.cluster).exists()  # the switch saved it again


def test_a_switch_refused_for_sessions_is_finished_by_the_same_command_once_fixed(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = live(app_dir, capsys)
    address, colour = idle_of(before)[0].split("/")
    lonely = dataclasses.replace(tomcat.base_of(bg.tomcats, address, colour), members=())
    tomcat_conf.write_base(lonely, bg.tomcats.password())
    user = logged_in(bg)
    fresh = str(build_war(NEW, app_dir / "fresh", artifact_id=app.APP, container="tomcat"))
    fixed = False
    try:
        refused = cli.run([fresh], app_dir, capsys)  # no colour runs it: the idle one restarts
        assert refused.code == 1, refused.text
        assert f"{address}/{colour} carries 0 of the" in refused.err
        assert "then run the same command again: it restarts an idle colour" in refused.err
        assert live(app_dir, capsys) == before and served(bg, user) == OLD
        # the operator fixes that colour's <Cluster>, and does what the message says
        tomcat_conf.write_base(tomcat.base_of(bg.tomcats, address, colour), bg.tomcats.password())
        fixed = True
        jvm = bg.jvms()[f"{address}/{colour}"]
        with Paced(bg.url()) as load:
            again = cli.run([fresh], app_dir, capsys)
        assert again.code == 0, again.text
        assert f"restarting {address}/{colour} so that it joins" in again.out
        assert bg.jvms()[f"{address}/{colour}"] != jvm
        assert load.failures() == []
        assert sorted(live(app_dir, capsys)) == sorted(idle_of(before))
        assert served(bg, user) == NEW and whoami(bg, user) == (200, "alice")
    finally:
        if not fixed:
            base = tomcat.base_of(bg.tomcats, address, colour)
            tomcat_conf.write_base(base, bg.tomcats.password())
            tomcat.restart(bg.tomcats, address, colour, timeout=30)


def test_swapped_colour_ports_fail_status_and_preflight_naming_status_url(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = app_dir / ".config"
    text = config.read_text()
    blue, green = (f"http://{{host}}:{bg.tomcats.http_port(c)}/status" for c in ("blue", "green"))
    assert blue in text and green in text
    config.write_text(text.replace(blue, "@").replace(green, blue).replace("@", green))
    first = bg.addresses[0]
    status = cli.run([], app_dir, capsys)
    assert status.code == 1, status.text
    assert f"error: {first}/blue: haproxy server web/{first}-blue sends traffic to" in status.out
    assert f"fix status_url for {first}/blue in .config" in status.out
    assert f"{first}/green's status_url: the two look swapped" in status.out
    as_json = cli.run(["--json"], app_dir, capsys)
    assert as_json.code == 1 and f"fix status_url for {first}/green" in as_json.err
    jvms = bg.jvms()
    refused = cli.run([bg.wars[NEW].name], app_dir, capsys)
    assert refused.code == 4, refused.text
    assert f"fix status_url for {first}/blue in .config" in refused.err
    assert "fix lb_server" not in refused.err
    assert bg.jvms() == jvms
    config.write_text(text)
    assert cli.run([], app_dir, capsys).code == 0


def test_a_haproxy_reload_during_the_canary_restarts_its_window(
    bg: Sandbox,
    app_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reload starts a new haproxy worker whose counters begin at zero (its server
    states kept by the state file): the canary watches again rather than judge a
    negative difference."""
    config = app_dir / ".config"
    pace = "canary = 1\ncanary_wait = 4\ncanary_min_requests = 20\n"
    config.write_text(config.read_text().replace("[deploy]\n", f"[deploy]\n{pace}", 1))
    # a build no colour runs yet: every host's idle colour is made, the first as the canary
    fresh = build_war(NEW, app_dir / "fresh", artifact_id=app.APP, container="tomcat")
    reloads: list[int] = []

    def reload_soon() -> None:
        def later() -> None:
            time.sleep(1.5)
            reloads.append(haproxy.reload(bg.tomcats.cluster))

        threading.Thread(target=later, daemon=True).start()

    on_note(monkeypatch, "canary ", reload_soon)  # "canary HOST: watching for 4 s"
    with Paced(bg.url()) as load:
        result = cli.run([str(fresh)], app_dir, capsys)
    monkeypatch.undo()
    assert result.code == 0, result.text
    assert len(reloads) == 1
    assert "Successful: haproxy's counters went backwards 1 time(s)" in result.out, result.out
    assert "so the window started again: judged over the last 4 s" in result.out
    verdict = verdicts(history(app_dir)[-1])
    assert verdict.startswith("Successful: haproxy's counters went backwards"), verdict
    assert "-" not in verdict.partition("; ")[2].split(" request(s)")[0]
    assert load.failures() == []
    assert served(bg) == NEW
