"""The app directory's history: whole-line atomic appends and what current/previous mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabfile.app.release import Release
from fabfile.records import history
from fabfile.records.history import Action, History, Record, Result
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
    assert log.entries() == []
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
    assert log.entries() == [w.to_dict() for w in written]
    assert log.entries()[2]["message"] == "é ü"


def test_append_leaves_the_old_file_when_killed_before_the_rename(
    log: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(log, entry("deploy", R1))
    before = log.path.read_bytes()

    def killed(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(history.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        log.append(entry("deploy", R2))
    assert log.path.read_bytes() == before
    assert log.current() == R1


def test_a_damaged_trailing_line_is_skipped_and_the_next_append_is_whole(log: History) -> None:
    record(log, entry("deploy", R1), entry("deploy", R2))
    with log.path.open("ab") as stream:
        stream.write(b'{"action": "deploy", "release": {"war": "ab')  # torn, no newline
    assert log.entries() == [entry("deploy", R1).to_dict(), entry("deploy", R2).to_dict()]
    log.append(entry("deploy", R3))
    assert log.entries()[-1] == entry("deploy", R3).to_dict()
    assert log.stack() == [R1, R2, R3]


def test_lines_that_are_not_objects_are_skipped(log: History) -> None:
    good = entry("deploy", R1).to_dict()
    lines = ["", "[1, 2]", '"text"', "42", "null", json.dumps(good), "{"]
    log.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert log.entries() == [good]


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
