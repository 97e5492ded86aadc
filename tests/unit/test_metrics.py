"""Delivery metrics (`deploy history --stats`) computed from constructed history records:
what counts as a deploy, a failure and a restore, the window, the percentiles, the
ready_timeout hint, and the command's table, JSON and errors."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

import pytest

from fabfile.app.appdir import AppDir
from fabfile.errors import ExitCode, UsageError
from fabfile.records import metrics
from fabfile.records.history import Action, History, HostRecord, Record, Result, Run
from fabfile.records.runlog import Process
from fabfile.view import tables
from tests.cli import run
from tests.unit.helpers import release

NOW = datetime.datetime(2026, 3, 31, 12, 0, tzinfo=datetime.UTC)


def at(days_ago: float, minutes: float = 0) -> str:
    when = NOW - datetime.timedelta(days=days_ago) + datetime.timedelta(minutes=minutes)
    return when.isoformat(timespec="seconds")


def rec(
    action: Action,
    outcome: Result,
    finished: str,
    n: int = 1,
    seconds: float | None = 10.0,
    canary: str = "",
    ready: dict[str, float] | None = None,
) -> Record:
    hosts = {h: HostRecord("deployed", restart_to_ready=s) for h, s in (ready or {}).items()}
    return Record(
        action,
        outcome,
        f"shop-1.0.{n}.war",
        release=release(n),
        hosts=hosts,
        seconds=seconds,
        verdicts=((None, canary),) if canary else (),  # as a record before the times reads
        finished=finished,
    )


def runs(*records: Record) -> list[Run]:
    return [Run(number, record) for number, record in enumerate(records, start=1)]


def stats(
    *records: Record, since: str = "30d", timeouts: dict[str, float] | None = None
) -> metrics.Stats:
    return metrics.compute(runs(*records), since, NOW, timeouts or {})


D, RB, SW = Action.DEPLOY, Action.ROLLBACK, Action.SWITCH
OK, FAILED = Result.OK, Result.FAILED


# -- --since -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("12h", 43200), ("30d", 2592000), ("2w", 1209600), (" 1D ", 86400)]
)
def test_since_takes_hours_days_and_weeks(text: str, seconds: int) -> None:
    assert metrics.parse_since(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "30", "0d", "-1d", "1.5d", "30 days", "3m", "9999999w"])
def test_a_bad_since_names_the_flag_and_a_valid_example(text: str) -> None:
    with pytest.raises(UsageError, match=r"--since .*such as --since 30d, 12h or 2w") as raised:
        metrics.parse_since(text)
    assert raised.value.exit_code == ExitCode.USAGE


# -- what counts ---------------------------------------------------------------


def test_deploys_per_day_over_the_window_and_not_the_refused_or_other_runs() -> None:
    found = stats(
        rec(D, OK, at(40)),  # before the window
        rec(D, OK, at(9)),
        rec(D, Result.REFUSED, at(8)),  # changed nothing
        rec(Action.STAGE, OK, at(7)),
        rec(Action.DARK, OK, at(6)),  # nobody sent to it yet...
        rec(SW, OK, at(6, 1)),  # ... its switch is the deploy
        rec(Action.LOGGING, OK, at(5)),
        rec(D, FAILED, at(3)),
    )
    assert found.deploys == (2, 6, 8)
    assert found.days == 30 and found.per_day == pytest.approx(0.1)
    assert found.runs == 7 and found.older == 1


def test_a_history_younger_than_the_window_divides_by_its_own_age_at_least_a_day() -> None:
    assert stats(rec(D, OK, at(10)), rec(D, OK, at(0))).days == pytest.approx(10)
    assert stats(rec(D, OK, at(0)), rec(D, OK, at(0, -5))).per_day == 2  # one day at least
    assert stats(rec(D, OK, at(0, -60)), since="12h").per_day == 2  # a window under a day


def test_change_failure_rate_counts_failed_interrupted_cut_off_canary_and_rolled_back() -> None:
    found = stats(
        rec(D, OK, at(9), 1),
        rec(D, FAILED, at(8), 2),
        rec(D, Result.INTERRUPTED, at(7), 3),
        rec(D, OK, at(6), 4, canary="Failed: web1 answered 5xx for 20 % of requests"),
        rec(D, OK, at(5), 5, canary="Successful: 0 of 400 requests failed"),
        rec(D, OK, at(4), 6),
        rec(RB, OK, at(4, 5), 5),
        rec(D, OK, at(3), 7),
    )
    assert [(f.run, f.why) for f in found.failures] == [
        (2, "failed"),
        (3, "interrupted"),
        (4, "canary Failed"),
        (6, "rolled back by run 7"),
    ]
    assert found.failure_rate == pytest.approx(4 / 7)


def test_rolling_back_twice_marks_two_deploys_and_a_refused_rollback_none() -> None:
    found = stats(
        rec(D, OK, at(5), 1),
        rec(D, OK, at(4), 2),
        rec(D, OK, at(3), 3),
        rec(RB, Result.REFUSED, at(2, 1), 2),
        rec(RB, OK, at(2, 2), 2),
        rec(RB, FAILED, at(2, 3), 1),  # a failed rollback: the deploy was bad all the same
    )
    assert [(f.run, f.why) for f in found.failures] == [
        (2, "rolled back by run 6"),
        (3, "rolled back by run 5"),
    ]


def test_a_run_cut_off_counts_when_it_started_and_a_running_one_not_at_all() -> None:
    process = Process(1, "coord", "alice", "deploy", at(2))
    cut = Run(1, rec(D, Result.CUT_OFF, ""), process=process)
    running = Run(2, rec(D, Result.RUNNING, ""), process=process)
    found = metrics.compute([cut, running], "30d", NOW, {})
    assert found.deploys == (1,) and found.failures[0].why == "cut off"
    assert metrics.ended_at(cut) == NOW - datetime.timedelta(days=2)
    assert metrics.ended_at(running) is None


def test_records_of_older_versions_without_a_time_are_left_out() -> None:
    assert stats(rec(D, OK, ""), rec(D, OK, "not a time")).runs == 0


# -- time to restore -----------------------------------------------------------


def test_time_to_restore_runs_from_the_first_failure_to_the_next_good_run() -> None:
    found = stats(
        rec(D, FAILED, at(5)),
        rec(D, FAILED, at(5, 10)),  # the same outage
        rec(Action.STAGE, OK, at(5, 15)),  # no release went live
        rec(RB, OK, at(5, 30)),  # restores: 30 minutes after the first failure
        rec(D, OK, at(2)),
        rec(RB, OK, at(2, 4)),  # the deploy before it failed; this rollback restored it
        rec(D, FAILED, at(1)),  # not restored yet
    )
    assert [(r.failed, r.restored, r.seconds) for r in found.restores] == [
        (1, 4, 1800.0),
        (5, 6, 240.0),
        (7, None, None),
    ]
    data = found.to_json()["time_to_restore"]
    assert (data["median"], data["max"], data["unrestored"]) == (1020.0, 1800.0, 1)


def test_a_deploy_rolled_back_is_no_good_run_to_restore_to() -> None:
    found = stats(rec(D, FAILED, at(3)), rec(D, OK, at(2)), rec(RB, OK, at(1)))
    assert [(r.failed, r.restored) for r in found.restores] == [(1, 3)]


def test_an_outage_that_began_before_the_window_is_not_counted_in_it() -> None:
    found = stats(rec(D, FAILED, at(40)), rec(D, OK, at(1)))
    assert found.restores == () and found.failures == ()


# -- durations and restart-to-ready ---------------------------------------------


def test_duration_median_and_nearest_rank_p95_of_the_deploys_that_ended_ok() -> None:
    times = [float(s) for s in range(1, 21)]  # 1..20 s
    found = stats(*(rec(D, OK, at(1), seconds=s) for s in times), rec(D, FAILED, at(0), seconds=99))
    assert found.durations == tuple(times)
    assert found.to_json()["duration"] == {"deploys": 20, "median": 10.5, "p95": 19.0}
    assert metrics.percentile([3.0, 1.0, 2.0], 95) == 3.0
    assert metrics.percentile([5.0], 95) == 5.0


def test_per_node_p95_and_the_hint_when_ready_timeout_is_under_twice_it() -> None:
    fast = [rec(D, OK, at(3), ready={"web1": 2.0, "web2": 6.0}) for _ in range(19)]
    slow = rec(RB, OK, at(2), ready={"web1": 3.0, "web2": 8.2, "gone": 1.0})
    found = stats(*fast, slow, timeouts={"web1": 15.0, "web2": 15.0})
    web1, web2, gone = found.nodes
    assert (web1.node, len(web1.times), web1.p95, web1.suggested) == ("web1", 20, 2.0, None)
    assert (web2.p95, web2.ready_timeout, web2.suggested) == (6.0, 15.0, None)
    assert (gone.ready_timeout, gone.suggested) == (None, None)  # no longer in .config
    slower = [rec(D, OK, at(1), ready={"web2": 8.2}) for _ in range(2)]
    web2 = stats(*fast, slow, *slower, timeouts={"web2": 15.0}).nodes[1]
    assert (web2.p95, web2.suggested) == (8.2, 17)


def test_an_empty_window_has_no_rates_and_no_crash() -> None:
    data = stats().to_json()
    assert data["deploys"] == 0 and data["change_failure_rate"] is None
    assert data["duration"]["median"] is None and data["time_to_restore"]["median"] is None


# -- the command ---------------------------------------------------------------


@pytest.fixture
def shop(tmp_path: Path) -> History:
    app = tmp_path / "shop"
    app.mkdir()
    (app / ".config").write_text("[deploy]\nhosts = web1, web2\nuser = u\nready_timeout = 10\n")
    return History(AppDir(app).history_path)


def now(minutes: float = 0) -> str:
    when = datetime.datetime.now().astimezone() + datetime.timedelta(minutes=minutes)
    return when.isoformat(timespec="seconds")


def test_stats_table_json_and_hint(shop: History, capsys: pytest.CaptureFixture[str]) -> None:
    shop.append(rec(D, OK, now(-60), 1, seconds=20.0, ready={"web1": 2.0, "web2": 6.0}))
    shop.append(rec(D, OK, now(-50), 2, seconds=30.0, ready={"web1": 2.0, "web2": 6.0}))
    shop.append(rec(RB, OK, now(-40), 1, seconds=5.0, ready={"web1": 2.0, "web2": 6.0}))
    result = run(["history", "--stats"], shop.path.parent, capsys)
    assert result.code == 0, result.text
    lines = result.out.splitlines()
    assert "the last 30d" in lines[0] and "3 runs" in lines[0]
    assert lines[2].split() == ["Deploys", "2.00", "a", "day", "2", "in", "1.00", "days"]
    assert "Change failure rate  50%" in result.out
    assert "1 of 2 (run 2: rolled back by run 3)" in result.out
    assert "median 10.0 min" in result.out  # from run 2's end to run 3's
    assert "median 25.0 s, p95 30.0 s" in result.out
    assert "web2         3                 6.0 s           10 s" in result.out
    hint = (
        "hint: web2: ready_timeout = 10 is under 2 x its p95 restart-to-ready (6.0 s, 3 restarts)"
    )
    assert hint in result.out
    assert "set ready_timeout = 12 ([host:web2] in .config" in result.out
    assert "hint: web1" not in result.out
    data = json.loads(run(["history", "--stats", "--json"], shop.path.parent, capsys).out)
    assert (data["deploys"], data["failed"], data["change_failure_rate"]) == (2, 1, 0.5)
    assert data["time_to_restore"]["restores"] == [{"failed": 2, "restored": 3, "seconds": 600.0}]
    assert data["nodes"][1] == {
        "node": "web2",
        "restarts": 3,
        "p95_restart_to_ready": 6.0,
        "ready_timeout": 10.0,
        "suggested_ready_timeout": 12,
    }
    assert data["hints"] == [line for line in lines if line.startswith("hint:")]


def test_stats_of_an_empty_history_says_so(
    shop: History, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(["history", "--stats"], shop.path.parent, capsys)
    assert result.code == 0 and result.out.startswith("no deploys recorded in ")
    data = json.loads(run(["history", "--stats", "--json"], shop.path.parent, capsys).out)
    assert data["deploys"] == 0 and data["nodes"] == [] and data["hints"] == []
    shop.append(rec(D, OK, now(-3 * 24 * 60)))
    result = run(["history", "--stats", "--since", "2d"], shop.path.parent, capsys)
    assert result.code == 0
    assert "in the last 2d; 1 older: a longer --since counts them" in result.out


@pytest.mark.parametrize("argv", [["--stats", "--since", "30"], ["--since", "yesterday"]])
def test_a_bad_since_exits_2_naming_the_flag(
    shop: History, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    result = run(["history", *argv], shop.path.parent, capsys)
    assert result.code == ExitCode.USAGE
    assert "error: --since " in result.err and "such as --since 30d" in result.err


def test_since_limits_the_listing_and_keeps_the_run_numbers(
    shop: History, capsys: pytest.CaptureFixture[str]
) -> None:
    shop.append(rec(D, OK, now(-3 * 24 * 60), 1))
    shop.append(rec(D, OK, now(-60), 2))
    rows = run(["history", "--since", "1d"], shop.path.parent, capsys).out.splitlines()[1:]
    assert [row.split()[0] for row in rows] == ["2"]
    listed = json.loads(run(["history", "--since", "1d", "--json"], shop.path.parent, capsys).out)
    assert [entry["run"] for entry in listed] == [2]
    empty = run(["history", "--since", "1h"], shop.path.parent, capsys)
    assert empty.out.startswith("no deploys recorded in ") and "in the last 1h" in empty.out


def test_the_hint_for_an_instance_names_its_sections() -> None:
    found = stats(rec(D, OK, at(1), ready={"web1/blue": 4.0}), timeouts={"web1/blue": 5.0})
    (hint,) = tables.ready_hints(found)
    assert "set ready_timeout = 8 ([host:web1] or [instance:blue] in .config" in hint


def test_a_failed_verdict_after_a_batch_or_in_the_watch_window_counts_by_its_name() -> None:
    watched = dataclasses.replace(
        rec(D, OK, at(6), 1),
        verdicts=((30.0, "batch 1/3: Successful: 80 request(s)"), (52.0, "watch: Failed: 9 %")),
    )
    batch = dataclasses.replace(
        rec(D, OK, at(5), 2), verdicts=((20.0, "batch 2/3: Failed: 7 %; the user went on"),)
    )
    fine = dataclasses.replace(rec(D, OK, at(4), 3), verdicts=((9.0, "watch: Successful: 0"),))
    found = stats(watched, batch, fine)
    assert [(f.run, f.why) for f in found.failures] == [
        (1, "watch Failed"),
        (2, "batch 2/3 Failed"),
    ]
