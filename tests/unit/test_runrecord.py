"""A run written ahead: its lines fold into one record, a run with no end is running or
cut off, the stack treats a cut-off run like an interrupted one, and the history file is
appended whole by any number of writers without losing a line."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path

import pytest

from fabfile.cluster.balancer import State
from fabfile.cluster.probe import Status
from fabfile.commands import cutoff, locks
from fabfile.commands import status as status_command
from fabfile.engine import recording
from fabfile.engine.phase import Phase
from fabfile.errors import DeployError
from fabfile.records import runlog
from fabfile.records.archive import Archive
from fabfile.records.history import Action, History, HostRecord, Record, Result
from fabfile.records.runlog import Liveness, Process
from tests.cli import run
from tests.unit.helpers import release
from tests.unit.test_contract import HOSTS, NEW, OLD, World
from tests.unit.test_lock import dead_pid

R1, R2, R3 = (release(n) for n in range(1, 4))
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def log(tmp_path: Path) -> History:
    return History(tmp_path / ".deploy-history.jsonl")


def gone() -> Process:
    """A process that ran on this host and is gone."""
    return dataclasses.replace(Process.me("deploy x.war"), pid=dead_pid(), ticks="1")


def done(action: Action, target: object, outcome: Result = Result.OK) -> Record:
    return Record(action, outcome, "x.war", release=target, finished="t")  # type: ignore[arg-type]


def started(log: History, target: object, process: Process, run_id: str = "r1") -> None:
    """A run's start line (and nothing more): what a coordinator killed at once leaves."""
    hosts = {h: HostRecord("untouched") for h in HOSTS}
    record = Record(Action.DEPLOY, Result.RUNNING, "x.war", release=target, hosts=hosts)  # type: ignore[arg-type]
    log.begin(run_id, record, process)


# -- folding ---------------------------------------------------------------------------


def test_a_run_folds_into_the_record_its_end_wrote(log: History) -> None:
    """`deploy history --json` shows a finished run as it showed the one line before."""
    log.append(done(Action.DEPLOY, R1))
    started(log, R2, Process.me("deploy x.war"))
    log.stage("r1", "nodes", 0.5)
    phases = [("pre-flight", 0.0), ("restarting", 1.0)]
    log.progress("r1", HOSTS[0], HostRecord("installed, not verified", phases=phases))
    end = Record(
        Action.DEPLOY,
        Result.OK,
        "x.war",
        release=R2,
        hosts={HOSTS[0]: HostRecord("deployed", phases=[*phases, ("done", 2.0)])},
        seconds=2.5,
        finished="t",
    )
    log.end("r1", end)
    log.append(done(Action.DEPLOY, R3, Result.REFUSED))
    first, run, refused = log.runs()
    assert (first.number, run.number, refused.number) == (1, 2, 3)
    assert run.record == end and run.liveness is None and run.run_id == "r1"
    lines = log.path.read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[4]) == end.to_json() | {"run_id": "r1"}
    assert run.record.to_json() == end.to_json()  # no run id, nothing new: as before


def test_progress_lines_build_the_record_of_a_run_with_no_end(log: History) -> None:
    started(log, R2, gone())
    log.stage("r1", "staging", 0.2)
    log.progress("r1", HOSTS[0], HostRecord("untouched", phases=[("pre-flight", 0.0)]))
    marks = [("pre-flight", 0.0), ("restarting", 3.0)]
    log.progress("r1", HOSTS[0], HostRecord("installed, not verified", "x", 7, phases=marks))
    log.progress("other", HOSTS[1], HostRecord("deployed", phases=[("done", 9.0)]))  # no start
    [run] = log.runs()
    assert run.record.outcome == Result.CUT_OFF and run.liveness == Liveness.GONE
    assert run.stage == "staging" and run.record.seconds == 3.0
    assert run.record.hosts[HOSTS[0]] == HostRecord("installed, not verified", "x", 7, phases=marks)
    assert run.record.hosts[HOSTS[1]] == HostRecord("untouched")
    assert run.record.message.startswith("cut off: no end was recorded")
    assert run.record.finished == ""


def test_a_line_torn_by_a_kill_mid_write_is_skipped_and_the_next_is_whole(log: History) -> None:
    started(log, R2, gone())
    with log.path.open("ab") as stream:
        stream.write(b'["node", "r1", "web1.invalid", {"outc')  # killed mid-write
    log.progress("r1", HOSTS[2], HostRecord("deployed", phases=[("done", 1.0)]))
    lines = log.path.read_bytes().splitlines()
    assert lines[1].startswith(b'["node"') and json.loads(lines[2])[2] == HOSTS[2]
    [run] = log.runs()
    assert run.record.hosts[HOSTS[2]].outcome == "deployed"
    assert run.record.hosts[HOSTS[0]].outcome == "untouched"


def test_older_readers_see_each_run_once_at_its_end(log: History) -> None:
    """Progress lines are arrays: a reader of whole records only skips them."""
    started(log, R2, Process.me("deploy x.war"))
    log.progress("r1", HOSTS[0], HostRecord("deployed", phases=[("done", 1.0)]))
    log.end("r1", done(Action.DEPLOY, R2))
    objects = [v for v in map(json.loads, log.path.read_text().splitlines()) if isinstance(v, dict)]
    assert [Record.from_dict(v) for v in objects] == [done(Action.DEPLOY, R2)]


# -- cut off or running ------------------------------------------------------------------


def test_a_run_whose_process_runs_is_running(log: History) -> None:
    started(log, R2, Process.me("deploy x.war"))
    [run] = log.runs()
    assert run.record.outcome == Result.RUNNING and run.liveness == Liveness.ALIVE


@pytest.mark.parametrize(
    "change",
    [
        {"pid": dead_pid()},  # gone
        {"ticks": "1"},  # the pid runs, but it is another process (a reused pid)
        {"boot": "another-boot"},  # the machine rebooted since
    ],
)
def test_a_run_whose_process_is_gone_is_cut_off(log: History, change: dict[str, object]) -> None:
    started(log, R2, dataclasses.replace(Process.me("deploy x.war"), **change))  # type: ignore[arg-type]
    assert log.records()[0].outcome == Result.CUT_OFF


def test_another_coordinators_run_is_cut_off_only_after_the_bound(log: History) -> None:
    now = Process.me("deploy x.war")
    elsewhere = dataclasses.replace(now, host=socket.gethostname() + ".elsewhere")
    assert elsewhere.judge(0) == Liveness.UNKNOWN
    old = dataclasses.replace(elsewhere, started="2020-01-01T00:00:00+00:00")
    assert old.judge(0) == Liveness.GONE
    assert old.judge(10**9) == Liveness.UNKNOWN  # its last line was recent
    started(log, R2, elsewhere, "a")
    started(log, R3, old, "b")
    assert [r.outcome for r in log.records()] == [Result.RUNNING, Result.CUT_OFF]


def test_a_start_line_without_a_readable_process_is_cut_off(log: History) -> None:
    log.path.write_text(json.dumps(["start", "r1", done(Action.DEPLOY, R2).to_dict(), 5]) + "\n")
    assert log.records()[0].outcome == Result.CUT_OFF


# -- the stack -------------------------------------------------------------------------------


def test_after_a_cut_off_deploy_rollback_aims_at_the_release_live_before_it(log: History) -> None:
    """The issue's case: 1.0.125, 1.0.126, then 1.0.124 cut off: back to 1.0.126."""
    log.append(done(Action.DEPLOY, R1))
    log.append(done(Action.DEPLOY, R2))
    started(log, R3, gone())
    assert log.stack() == [R1, R2, R3] and log.current() == R3
    assert log.previous() == R2
    log.append(done(Action.ROLLBACK, R2))
    assert log.current() == R2 and log.previous() == R1


def test_a_cut_off_rollback_leaves_the_stack_so_running_it_again_finishes_it(
    log: History,
) -> None:
    for target in (R1, R2, R3):
        log.append(done(Action.DEPLOY, target))
    record = Record(Action.ROLLBACK, Result.RUNNING, "x.war", release=R2)
    log.begin("r1", record, gone())
    assert log.current() == R3 and log.previous() == R2


def test_two_runs_cut_off_in_a_row_go_back_to_the_last_release_live_everywhere(
    log: History,
) -> None:
    log.append(done(Action.DEPLOY, R1))
    started(log, R2, gone(), "a")
    log.append(done(Action.DEPLOY, R3, Result.FAILED))
    assert log.stack() == [R1, R2, R3]
    assert log.previous() == R1
    log.append(done(Action.DEPLOY, R3))
    assert log.stack() == [R1, R3]


# -- the file: modes, writers --------------------------------------------------------------


def test_appending_keeps_the_files_mode_and_never_rewrites_it(log: History) -> None:
    log.append(done(Action.DEPLOY, R1))
    os.chmod(log.path, 0o664)
    inode = log.path.stat().st_ino
    started(log, R2, gone())
    log.append(done(Action.DEPLOY, R2))
    assert (log.path.stat().st_mode & 0o777, log.path.stat().st_ino) == (0o664, inode)


def _umask(mask: int) -> int:
    return os.umask(mask)


@pytest.mark.parametrize(("directory", "made"), [(0o770, 0o660), (0o700, 0o600)])
def test_a_new_history_is_the_groups_in_a_directory_the_group_shares(
    tmp_path: Path, directory: int, made: int
) -> None:
    """Made with umask 077: in a group-writable app directory every member can still
    append; in a private one it stays private."""
    app = tmp_path / "app"
    app.mkdir()
    os.chmod(app, directory)
    before = _umask(0o077)
    try:
        History(app / ".deploy-history.jsonl").append(done(Action.DEPLOY, R1))
        Archive(app).snapshot([], "deploy")
        kept = Archive(app).keep(b"config")
    finally:
        _umask(before)
    assert (app / ".deploy-history.jsonl").stat().st_mode & 0o777 == made
    assert (app / ".deploy-archive").stat().st_mode & 0o777 == directory
    assert kept.stat().st_mode & 0o060 == made & 0o060


def test_threads_appending_at_once_lose_nothing(log: History) -> None:
    def writer(n: int) -> None:
        for i in range(100):
            log.progress("r1", f"web{n}", HostRecord("deployed", "x" * 3000, phases=[("d", i)]))

    started(log, R2, Process.me("deploy x.war"))
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = log.path.read_text().splitlines()
    assert len(lines) == 801 and all(json.loads(line) for line in lines)
    [run] = log.runs()
    assert all(len(run.record.hosts[f"web{n}"].phases) == 100 for n in range(8))


WRITER = """
import sys
from pathlib import Path
from fabfile.records.history import Action, History, Record, Result
history = History(Path(sys.argv[1]))
for n in range(150):
    history.append(Record(Action.DEPLOY, Result.REFUSED, sys.argv[2], message="x" * 9000))
"""


def test_processes_appending_at_once_lose_nothing(log: History) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(log.path), f"w{n}"], env=env)
        for n in range(4)
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0] * 4
    records = log.records()
    assert len(records) == 600 and len(log.path.read_text().splitlines()) == 600
    assert {r.artifact for r in records} == {"w0", "w1", "w2", "w3"}


# -- a rollout writes ahead ------------------------------------------------------------------


class Killed(BaseException):
    """The coordinator dies: nothing of the tool runs after this (no end is written)."""


def test_a_rollout_killed_mid_restart_is_told_as_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path, "rolling", monkeypatch)
    world.run(OLD)  # the release live on every node
    dead = gone()
    monkeypatch.setattr(runlog.Process, "me", staticmethod(lambda command: dead))
    monkeypatch.setattr(recording.Recorder, "end", lambda self, result, message: None)
    original = world.reporter.phase

    def phase(host: str, now: Phase, detail: str = "") -> None:
        original(host, now, detail)
        if (host, now) == (HOSTS[1], Phase.RESTARTING):
            raise Killed

    monkeypatch.setattr(world.reporter, "phase", phase)
    with pytest.raises(Killed):
        world.run(NEW)
    history = History(world.app.history_path)
    [run] = cutoff.unfinished(history)
    assert run.record.outcome == Result.CUT_OFF and run.stage == "nodes"
    outcomes = {host: item.outcome for host, item in run.record.hosts.items()}
    assert outcomes == dict(
        zip(HOSTS, ["deployed", "installed, not verified", "untouched"], strict=True)
    )
    assert cutoff.where(run) == ("restarting", [HOSTS[1]])
    assert history.previous() == OLD
    statuses = [Status(h, f"http://{h}/status", True, "", 200, "g:a", "1.0.1") for h in HOSTS]
    rotation = {HOSTS[0]: State.UP, HOSTS[1]: State.DRAIN, HOSTS[2]: State.UP}
    lines = cutoff.status_notice(run, statuses, rotation, "deploy rollback")
    assert lines[0].startswith(f"Run 2 (deploy {NEW.war_name} by ")
    assert lines[0].endswith(
        f"was cut off in phase 'restarting' on {HOSTS[1]}: no end was recorded."
    )
    assert (
        lines[2]
        == f"  {HOSTS[1]}: installed, not verified (restarting); now runs 1.0.1, haproxy DRAIN"
    )
    assert (
        lines[-1] == "To finish it, run it again: deploy x.war. To go back instead: deploy rollback"
    )
    line = cutoff.rollback_line([run], history.current(), OLD)
    assert line.startswith(
        f"rollback to {OLD.version}, the release live on every node before run 2"
    )


def test_a_finished_rollout_is_no_longer_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path, "rolling", monkeypatch)
    started(History(world.app.history_path), NEW, gone())
    assert len(cutoff.unfinished(History(world.app.history_path))) == 1
    world.run(NEW)
    assert cutoff.unfinished(History(world.app.history_path)) == []
    lines = world.app.history_path.read_text().splitlines()
    assert json.loads(lines[1])[:2] == ["start", json.loads(lines[-1])["run_id"]]


def test_a_history_that_cannot_be_written_refuses_the_run_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fabfile.errors import ConfigError
    from fabfile.records import shared

    world = World(tmp_path, "rolling", monkeypatch)

    def refused(path: Path, line: bytes) -> None:
        raise ConfigError(f"{path}: Permission denied")

    monkeypatch.setattr(shared, "append_line", refused)
    with pytest.raises(ConfigError, match="Permission denied"):
        world.run(NEW)
    assert world.running() == dict.fromkeys(HOSTS, OLD.version)  # no node was touched


GROUP = 47110  # no name needed: the kernel checks numbers
MEMBERS = (47111, 47112)  # each with a primary group of its own, GROUP beside it


def as_member(uid: int, app: Path, word: str) -> tuple[int, str]:
    """Append to the history and snapshot the archive as user ``uid`` (umask 077), in a
    forked child: exit 0, 1 with our message, or 2 with a traceback."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        code, text = 0, ""
        try:
            os.setgroups([GROUP])
            os.setgid(uid)
            os.setuid(uid)
            os.umask(0o077)
            os.environ["LOGNAME"] = f"member{uid}"  # no passwd entry: getpass reads this
            History(app / ".deploy-history.jsonl").append(done(Action.DEPLOY, R1, Result.REFUSED))
            Archive(app).snapshot([app / "config.properties"], word)
        except DeployError as error:
            code, text = 1, f"refused: {error}"
        except BaseException:
            code, text = 2, traceback.format_exc()
        os.write(write, text.encode())
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as stream:
        text = stream.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), text


@pytest.mark.skipif(os.geteuid() != 0, reason="acting as two users needs root")
def test_two_members_of_the_group_share_the_history_and_the_archive() -> None:
    """Each with umask 077, in an app directory their group may write: the second one
    appends to what the first one created, without a traceback."""
    base = Path(tempfile.mkdtemp(prefix="wardeploy-shared-"))
    try:
        os.chmod(base, 0o711)
        app = base / "app"
        app.mkdir()
        (app / "config.properties").write_text("a=1\n")
        for path, mode in ((app, 0o770), (app / "config.properties", 0o640)):
            os.chown(path, 0, GROUP)
            os.chmod(path, mode)
        for uid in MEMBERS:
            assert as_member(uid, app, f"by-{uid}") == (0, "")
            (app / "config.properties").write_text(f"a={uid}\n")  # a change to archive
        history = app / ".deploy-history.jsonl"
        assert len(History(history).records()) == 2
        assert (history.stat().st_uid, history.stat().st_gid) == (MEMBERS[0], GROUP)
        assert history.stat().st_mode & 0o777 == 0o660
        log = app / ".deploy-archive" / "log.jsonl"
        assert [json.loads(line)["command"] for line in log.read_text().splitlines()] == [
            f"by-{u}" for u in MEMBERS
        ]
        os.chmod(history, 0o640)  # as an older version left it: the group may not write
        code, text = as_member(MEMBERS[1], app, "late")
        assert code == 1, text
        assert text.startswith(f"refused: {history}: Permission denied (owner 47111, ")
        assert f"`chgrp {GROUP} {history} && chmod g+rw {history}`" in text
    finally:
        shutil.rmtree(base)


# -- what the commands say -------------------------------------------------------------------


def test_status_and_history_tell_a_cut_off_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "shop"
    app.mkdir()
    (app / ".config").write_text(f"[deploy]\nhosts = {', '.join(HOSTS)}\nuser = u\n")
    log = History(app / ".deploy-history.jsonl")
    log.append(done(Action.DEPLOY, R1))
    started(log, R2, gone())
    marks = [("pre-flight", 0.0), ("draining", 2.0)]
    log.progress("r1", HOSTS[0], HostRecord("untouched", phases=marks))
    answers = [Status(h, f"http://{h}/status", True, "", 200, "g:a", R1.version) for h in HOSTS]
    monkeypatch.setattr(status_command.probe, "probe_all", lambda nodes, failed=None: answers)
    monkeypatch.setattr(
        locks, "read", lambda nodes, turned=None: {}
    )  # the nodes' locks: free (read: a run has no end)
    shown = run([], app, capsys)
    assert shown.code == 0, shown.text  # every node serves: the notice says the rest
    notice = shown.out[shown.out.index("Run 2 ") :].splitlines()
    assert notice[0].endswith(
        f"was cut off in phase 'draining' on {HOSTS[0]}: no end was recorded."
    )
    assert notice[1] == f"  {HOSTS[0]}: untouched (draining); now runs {R1.version}"
    assert notice[-1].startswith("To finish it, run it again: deploy x.war. To go back instead: ")
    as_json = run(["--json"], app, capsys)
    assert [row["host"] for row in json.loads(as_json.out)] == list(HOSTS)
    assert as_json.err.startswith("Run 2 (deploy x.war by ")
    table = run(["history"], app, capsys).out.splitlines()
    assert "cut off" in table[2] and "web1.invalid: untouched" in table[2]
    listed = json.loads(run(["history", "--json"], app, capsys).out)
    assert [entry["outcome"] for entry in listed] == ["ok", "cut off"]
    timeline = run(["report", "--json"], app, capsys)
    assert timeline.code == 0 and json.loads(timeline.out)["run"] == 2, timeline.text
    assert [row["node"] for row in json.loads(timeline.out)["nodes"]] == [HOSTS[0]]
    log.append(done(Action.DEPLOY, R2))
    assert "Run 2 " not in run([], app, capsys).out  # a later deploy settled it


def test_the_progress_lines_of_a_run_that_ended_are_not_even_parsed(log: History) -> None:
    started(log, R2, Process.me("deploy x.war"))
    log.progress("r1", HOSTS[0], HostRecord("deployed", phases=[("done", 1.0)]))
    log.stage("r1", "nodes", 0.5)
    log.end("r1", done(Action.DEPLOY, R2))
    started(log, R3, gone(), "r2")
    log.progress("r2", HOSTS[0], HostRecord("deployed", phases=[("done", 1.0)]))
    values = runlog.values(log.path.read_bytes().splitlines())
    assert [v[0] if isinstance(v, list) else "end" for v in values] == [
        "start",
        "end",
        "start",
        "node",
    ]
