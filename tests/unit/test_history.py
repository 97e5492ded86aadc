"""The app directory's history: whole-line atomic appends, what current/previous mean, and
the one reader of its lines (older, newer and damaged ones too)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from fabfile.app.appdir import AppDir
from fabfile.app.release import Release
from fabfile.records import history, metrics, runlog, shared
from fabfile.records.history import Action, History, HostRecord, Record, Result
from fabfile.view import timeline
from tests.cli import run
from tests.unit.helpers import release


def entry(action: str, target: Release, outcome: str = "ok") -> Record:
    """A record as `fabfile.engine.recording` writes it."""
    return Record(
        Action(action), Result(outcome), target.war_name, release=target, finished=FINISHED
    )


@pytest.fixture
def log(tmp_path: Path) -> History:
    return History(tmp_path / ".deploy-history.jsonl")


def record(log: History, *entries: Record) -> None:
    for item in entries:
        log.append(item)


FINISHED = "2026-01-01T00:00:00+00:00"
R1, R2, R3, R4 = (release(n) for n in range(1, 5))


# -- the file ------------------------------------------------------------------


def test_no_file_means_no_history(log: History) -> None:
    assert log.records() == []
    assert log.stack() == []
    assert log.current() is None
    assert log.previous() is None


def test_append_keeps_entries_in_order_as_whole_json_lines(log: History) -> None:
    written = [
        entry("deploy", R1),
        entry("deploy", R2, "failed"),
        Record(Action.DEPLOY, Result.REFUSED, "x.war", message="é ü"),
    ]
    for count, item in enumerate(written, start=1):
        log.append(item)
        text = log.path.read_text(encoding="utf-8")
        assert text.endswith("\n")
        lines = text.splitlines()
        assert len(lines) == count
        assert [json.loads(line) for line in lines] == [w.to_dict() for w in written[:count]]
    assert [r.to_dict() for r in log.records()] == [w.to_dict() for w in written]
    assert log.records() == written
    assert log.records()[2].message == "é ü"


def test_append_leaves_the_old_file_when_killed_before_its_write(
    log: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(log, entry("deploy", R1))
    before = log.path.read_bytes()

    def killed(fd: int, data: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(shared.os, "write", killed)
    with pytest.raises(KeyboardInterrupt):
        log.append(entry("deploy", R2))
    assert log.path.read_bytes() == before
    assert log.current() == R1


def test_a_damaged_trailing_line_is_skipped_and_the_next_append_is_whole(log: History) -> None:
    record(log, entry("deploy", R1), entry("deploy", R2))
    with log.path.open("ab") as stream:
        stream.write(b'{"action": "deploy", "release": {"war": "ab')  # torn, no newline
    assert log.records() == [entry("deploy", R1), entry("deploy", R2)]
    log.append(entry("deploy", R3))
    assert log.records()[-1] == entry("deploy", R3)
    assert log.stack() == [R1, R2, R3]


def test_lines_that_are_not_objects_are_skipped(log: History) -> None:
    good = entry("deploy", R1).to_dict()
    lines = ["", "[1, 2]", '"text"', "42", "null", json.dumps(good), "{"]
    log.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert [r.to_dict() for r in log.records()] == [good]


# -- stack, current, previous ---------------------------------------------------


def test_deploys_push(log: History) -> None:
    record(log, entry("deploy", R1), entry("deploy", R2), entry("deploy", R3))
    assert log.stack() == [R1, R2, R3]
    assert log.current() == R3
    assert log.previous() == R2


@pytest.mark.parametrize("outcome", ["failed", "interrupted"])
def test_a_failed_or_interrupted_deploy_also_pushes(log: History, outcome: str) -> None:
    record(log, entry("deploy", R1), entry("deploy", R2, outcome))
    assert log.current() == R2
    assert log.previous() == R1


def test_a_refused_deploy_does_not_push(log: History) -> None:
    record(log, entry("deploy", R1), entry("deploy", R2, "refused"))
    assert log.stack() == [R1]
    assert log.previous() is None


def test_redeploying_the_current_release_pushes_it_once(log: History) -> None:
    again = release(2, war_name="renamed.war")  # same checksums: the same release
    record(log, entry("deploy", R1), entry("deploy", R2), entry("deploy", again))
    assert log.stack() == [R1, R2]
    assert log.previous() == R1


def test_deploying_an_older_release_again_is_a_new_top(log: History) -> None:
    record(log, entry("deploy", R1), entry("deploy", R2), entry("deploy", R1))
    assert log.stack() == [R1, R2, R1]
    assert log.previous() == R2


def test_rolling_back_twice_goes_two_releases_back(log: History) -> None:
    record(log, entry("deploy", R1), entry("deploy", R2), entry("deploy", R3))
    log.append(entry("rollback", log.previous()))  # type: ignore[arg-type]
    assert log.current() == R2
    assert log.previous() == R1
    log.append(entry("rollback", log.previous()))  # type: ignore[arg-type]
    assert log.current() == R1
    assert log.previous() is None
    log.append(entry("deploy", R4))
    assert log.stack() == [R1, R4]


def test_a_rollback_to_a_release_not_in_the_stack_pushes(log: History) -> None:
    record(log, entry("deploy", R2), entry("rollback", R1))
    assert log.stack() == [R2, R1]


def test_a_refused_rollback_changes_nothing(log: History) -> None:
    record(log, entry("deploy", R1), entry("deploy", R2), entry("rollback", R1, "refused"))
    assert log.stack() == [R1, R2]


@pytest.mark.parametrize("outcome", ["failed", "interrupted"])
def test_a_failed_rollback_leaves_the_stack_so_running_it_again_finishes_it(
    log: History, outcome: str
) -> None:
    record(log, entry("deploy", R1), entry("deploy", R2), entry("deploy", R3))
    log.append(entry("rollback", R2, outcome))
    assert log.current() == R3
    assert log.previous() == R2


def test_entries_without_a_readable_release_are_ignored(log: History) -> None:
    """Lines an older or damaged writer left: read leniently, never a crash."""
    broken = entry("deploy", R2).to_dict()
    del broken["release"]["war"]
    legacy = [
        entry("deploy", R1).to_dict(),
        broken,
        {"action": "deploy", "outcome": "ok"},
        {"action": "deploy", "release": "not an object", "outcome": "ok"},
    ]
    log.path.write_text("".join(json.dumps(item) + "\n" for item in legacy))
    assert log.stack() == [R1]


def test_a_failed_deploy_left_behind_is_no_rollback_target(log: History) -> None:
    log.append(entry("deploy", R1))
    log.append(entry("deploy", R2, "failed"))
    assert log.previous() == R1  # rollback leaves the failed release
    log.append(entry("deploy", R3))
    assert log.stack() == [R1, R3]
    assert log.previous() == R1  # not the broken R2


# -- the one reader: typed records, old lines, damaged lines ---------------------------

EVERY_FIELD = Record(
    Action.DEPLOY,
    Result.FAILED,
    "shop-1.0.2.war",
    message="web2: not verified",
    release=release(2),
    hosts={
        "web1": HostRecord(
            "deployed",
            detail="as ##000002-1.0.2",
            bytes_sent=1234,
            restart_to_ready=2.5,
            guided="retry",
            phases=[("pre-flight", 0.0), ("deploying", 1.25), ("done", 3.5)],
            tag="000002-1.0.2",
        ),
        "web2": HostRecord("failed", "web2: not verified", phases=[("pre-flight", 0.0)]),
    },
    seconds=9.75,
    stages={"preflight": 0.5, "staging": 1.0},
    verdicts=((12.5, "Successful: 0 errors"),),
    hooks="pre_deploy: ok (0.1 s); post_deploy: exited with 1 (0.0 s)",
    finished=FINISHED,
    user="ops",
    origin="laptop",
)


@pytest.mark.parametrize("kind", [Record, HostRecord])
def test_the_round_trip_test_sets_every_field(kind: type) -> None:
    """A field added later must be added to EVERY_FIELD (and so to the reader) too."""
    sample = EVERY_FIELD if kind is Record else EVERY_FIELD.hosts["web1"]
    for field in dataclasses.fields(kind):
        default = field.default_factory() if callable(field.default_factory) else field.default
        assert getattr(sample, field.name) != default, field.name


def test_every_field_reads_back_as_written(log: History) -> None:
    log.append(EVERY_FIELD)
    assert log.records() == [EVERY_FIELD]
    [line] = log.path.read_text(encoding="utf-8").splitlines()
    assert log.records()[0].to_json() == json.loads(line)  # `deploy history --json` prints it


def test_an_unknown_action_or_outcome_is_kept_as_written(log: History) -> None:
    """A newer version's words: the line is still listed and counted, and the stack
    reads it as it always did (a run that was not ok, towards its release)."""
    newer = entry("deploy", R2).to_dict() | {"action": "canary", "outcome": "partial"}
    log.append(entry("deploy", R1))
    log.path.write_text(log.path.read_text() + json.dumps(newer) + "\n")
    [_, record] = log.records()
    assert (record.action, record.outcome) == ("canary", "partial")
    assert record.action not in set(Action) and record.outcome not in set(Result)
    assert record.to_json() == json.loads(json.dumps(newer, sort_keys=True))
    assert log.stack() == [R1, R2]


def test_lines_of_older_versions_read_with_defaults(log: History) -> None:
    """As the first versions wrote them: no stages, no phases, no tag; a refusal without
    seconds, machine or release."""
    deployed = {
        "action": "deploy",
        "finished": FINISHED,
        "seconds": 12,
        "user": "ops",
        "from": "laptop",
        "artifact": R1.war_name,
        "version": R1.version,
        "sha256": R1.war,
        "release": dataclasses.asdict(R1),
        "outcome": "ok",
        "message": "",
        "hosts": {"web1": {"outcome": "deployed", "bytes_sent": 10, "restart_to_ready": None}},
    }
    refused = {
        "action": "deploy",
        "finished": FINISHED,
        "user": "ops",
        "artifact": "x.war",
        "outcome": "refused",
        "message": "no such WAR",
        "hosts": {},
    }
    log.path.write_text("".join(json.dumps(item) + "\n" for item in (deployed, refused)))
    first, second = log.records()
    assert first == Record(
        Action.DEPLOY,
        Result.OK,
        R1.war_name,
        release=R1,
        hosts={"web1": HostRecord("deployed", bytes_sent=10)},
        seconds=12,
        finished=FINISHED,
        user="ops",
        origin="laptop",
    )
    assert second == Record(
        Action.DEPLOY,
        Result.REFUSED,
        "x.war",
        message="no such WAR",
        finished=FINISHED,
        user="ops",
        origin="",  # not this machine: nobody knows which it was
    )
    assert log.stack() == [R1]


def _parallel_line(detail: str, outcome: str = "deployed", **more: str) -> str:
    host = {"outcome": outcome, "detail": detail, "bytes_sent": 0} | more
    line = entry("deploy", R2).to_dict() | {"hosts": {"web1": host}}
    return json.dumps(line) + "\n"


def test_an_older_parallel_line_gives_its_tag_from_the_detail(log: History) -> None:
    log.path.write_text(_parallel_line("as ##000002-1.0.2"))
    [record] = log.records()
    assert record.hosts["web1"].tag == "000002-1.0.2"
    assert record.hosts["web1"].detail == "as ##000002-1.0.2"  # the words as they were
    assert log.verified_tags() == {"web1": "000002-1.0.2"}


def test_a_line_with_the_tag_field_is_not_read_from_its_words(log: History) -> None:
    log.path.write_text(_parallel_line("as ##000009-9", tag="") + _parallel_line("x", tag="T1"))
    first, second = log.records()
    assert (first.hosts["web1"].tag, second.hosts["web1"].tag) == ("", "T1")
    assert log.verified_tags() == {"web1": "T1"}


def test_only_a_verified_node_gives_its_tag(log: History) -> None:
    verified = HostRecord("deployed", "as ##T1", tag="T1")
    unchanged = HostRecord("unchanged", "as ##T2", tag="T2")
    failed = HostRecord("failed", "web3: not verified", tag="T3")
    hosts = {"web1": verified, "web2": unchanged, "web3": failed}
    log.append(Record(Action.DEPLOY, Result.FAILED, R1.war_name, release=R1, hosts=hosts))
    assert log.verified_tags() == {"web1": "T1", "web2": "T2"}
    log.path.write_text(log.path.read_text() + _parallel_line("as ##OLD", outcome="failed"))
    assert log.verified_tags() == {"web1": "T1", "web2": "T2"}


def test_a_damaged_field_takes_its_default_and_a_damaged_line_is_skipped(log: History) -> None:
    damaged = {
        "action": 5,
        "outcome": "ok",
        "seconds": 10**400,
        "stages": {"staging": 1.5, "nodes": "?", "preflight": float("nan"), "x": "soon"},
        "release": {"war": "ab"},
        "hosts": {
            "web1": "not an object",
            "web2": {
                "outcome": "deployed",
                "bytes_sent": "many",
                "restart_to_ready": True,
                "phases": [["done"], ["done", None], "x", [3, 1.0], ["restarting", 0.5]],
            },
        },
    }
    lines = [
        json.dumps(damaged),
        '{"action": "deploy", "outc',
        json.dumps(entry("deploy", R1).to_dict()),
    ]
    log.path.write_text("\n".join(lines) + "\n")
    first, second = log.records()
    assert first == Record(
        history.Unknown(""),
        Result.OK,
        "",
        hosts={"web2": HostRecord("deployed", phases=[("restarting", 0.5)])},
        stages={"staging": 1.5},
        finished="",
        user="",
        origin="",
    )
    assert second == entry("deploy", R1)
    assert log.stack() == [R1]


# -- what `deploy history` shows ---------------------------------------------------------


@pytest.fixture
def shop(tmp_path: Path) -> History:
    app = tmp_path / "shop"
    app.mkdir()
    (app / ".config").write_text("[deploy]\nhosts = web1, web2\nuser = u\n")
    return History(AppDir(app).history_path)


def test_history_json_prints_each_line_as_written_with_its_number(
    shop: History, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exactly what it printed when it read the lines as dicts: ``{"run": N} | line``."""
    record(shop, entry("deploy", R1), EVERY_FIELD)
    record(shop, Record(Action.DEPLOY, Result.REFUSED, "x.war", message="é ü"))
    lines = [json.loads(line) for line in shop.path.read_text(encoding="utf-8").splitlines()]
    result = run(["history", "--json"], shop.path.parent, capsys)
    assert result.code == 0, result.text
    numbered = [{"run": n} | line for n, line in enumerate(lines, start=1)]
    assert result.out == json.dumps(numbered, indent=2) + "\n"
    last_two = run(["history", "--json", "-n", "2"], shop.path.parent, capsys)
    assert last_two.out == json.dumps(numbered[1:], indent=2) + "\n"


def test_history_table_shows_old_unknown_and_damaged_lines(
    shop: History, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = entry("deploy", R2).to_dict() | {"action": "canary", "outcome": "partial"}
    lines = ["{", json.dumps({"action": "deploy", "outcome": "ok", "hosts": {"web1": {}}})]
    shop.path.write_text("\n".join([*lines, json.dumps(newer)]) + "\n")
    table = run(["history"], shop.path.parent, capsys).out.splitlines()
    assert [line.split()[:2] for line in table[1:]] == [["1", "deploy"], ["2", FINISHED]]
    assert "web1: ?" in table[1]
    assert "canary" in table[2] and "partial" in table[2] and R2.version in table[2]


def test_verdicts_are_written_once_with_their_times(log: History) -> None:
    log.append(EVERY_FIELD)
    entry = json.loads(log.path.read_text(encoding="utf-8"))
    assert entry["verdicts"] == [[12.5, "Successful: 0 errors"]]
    assert "canary" not in entry


def test_an_older_record_with_only_canary_still_has_its_verdicts(log: History) -> None:
    """Older versions kept the verdicts joined in "canary", without times; for a while
    they wrote both keys ("verdicts" wins)."""
    old = EVERY_FIELD.to_dict()
    del old["verdicts"]
    both = old | {"verdicts": [[3.0, "Successful: 0 errors"]]}
    old["canary"] = "Successful: 0 errors; batch 2/3: Failed: 7 %"
    log.path.write_text(json.dumps(old) + "\n" + json.dumps(both | {"canary": "x"}) + "\n")
    first, second = log.records()
    assert first.verdicts == ((None, "Successful: 0 errors; batch 2/3: Failed: 7 %"),)
    assert second.verdicts == ((3.0, "Successful: 0 errors"),)
    assert first.to_json()["verdicts"] == [[None, "Successful: 0 errors; batch 2/3: Failed: 7 %"]]
    assert metrics._failed_verdict(first) == "batch 2/3 Failed"
    assert timeline.of(first).verdicts == first.verdicts
    assert timeline.when(None) == "time not recorded" and timeline.when(3.04) == "3.0 s"


def test_a_fact_learnt_after_the_end_amends_the_record_in_a_line_of_its_own(
    log: History,
) -> None:
    """Post hooks run after the end is on disk; what they said is added, not rewritten."""
    process = runlog.Process.me("deploy shop-1.0.2.war")
    log.begin("run-1", dataclasses.replace(EVERY_FIELD, outcome=Result.RUNNING), process)
    log.end("run-1", dataclasses.replace(EVERY_FIELD, hooks="pre_deploy: ok (0.1 s)"))
    ended = log.path.read_bytes()
    log.amend("run-1", hooks="pre_deploy: ok (0.1 s); post_deploy: exited with 1 (0.0 s)")
    assert log.path.read_bytes().startswith(ended)  # appended, nothing rewritten
    (record,) = log.records()
    assert record.outcome == EVERY_FIELD.outcome and record.message == EVERY_FIELD.message
    assert record.hooks == "pre_deploy: ok (0.1 s); post_deploy: exited with 1 (0.0 s)"
    log.amend("another-run", hooks="x")  # no such run: nothing to amend
    assert log.records() == [record]
