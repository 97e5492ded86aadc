"""The timeline of a run, from the phases the history recorded per node."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fabfile.engine.phase import Phase
from fabfile.errors import ExitCode, UsageError
from fabfile.records.history import Record
from fabfile.view import timeline
from tests.cli import run

RUN = {
    "action": "deploy",
    "artifact": "app-1.0.126.war",
    "outcome": "failed",
    "seconds": 9.5,
    "finished": "2026-11-25T10:00:00+00:00",
    "user": "ops",
    "hosts": {
        "web1": {
            "outcome": "deployed",
            "phases": [
                ["pre-flight", 0.0],
                ["staged", 0.5],
                ["draining", 0.6],
                ["restarting", 1.0],
                ["waiting for /status", 1.2],
                ["warming up", 3.2],
                ["done", 4.2],
            ],
        },
        "web2": {
            "outcome": "failed",
            "phases": [
                ["pre-flight", 0.0],
                ["staged", 0.4],
                ["draining", 4.2],
                ["restarting", 4.5],
                ["waiting for /status", 4.6],
                ["failed", 9.4],
            ],
        },
    },
}
REFUSED = {"action": "deploy", "outcome": "refused", "hosts": {}}


def read(line: object) -> Record:
    """A history line as `fabfile.records.history.History.records` reads it."""
    record = Record.from_dict(line)
    assert record is not None
    return record


def test_each_phase_lasts_until_the_next_begins() -> None:
    line = timeline.of(read(RUN))
    web1, web2 = line.nodes
    assert (web1.node, web2.node) == ("web1", "web2")
    assert web1.totals()["waiting for /status"] == pytest.approx(2.0)
    assert web1.totals()[timeline.WAITING_TURN] == pytest.approx(0.1)  # staged, then its turn
    assert (web1.ended, web1.at, web2.ended, web2.at) == ("done", 4.2, "failed", 9.4)
    assert web2.busy == pytest.approx(9.4 - 3.8)  # its wait for its turn is not its own
    assert line.seconds == pytest.approx(9.4)
    assert line.columns() == [
        "pre-flight",
        "draining",
        "restarting",
        "waiting for /status",
        "warming up",
    ]


def test_a_run_stopped_mid_phase_closes_it_at_the_run_end_with_the_node_outcome() -> None:
    entry = {
        "seconds": 8.0,
        "hosts": {
            "web1": {
                "outcome": "interrupted",
                "phases": [["pre-flight", 0.0], ["restarting", 1.5]],
            },
            "web2": {"outcome": "untouched", "phases": [["pre-flight", 0.0], ["staged", 0.4]]},
        },
    }
    web1, web2 = timeline.of(read(entry)).nodes
    assert web1.spans[-1] == timeline.Span("restarting", 1.5, 8.0)
    assert (web1.ended, web1.at) == ("interrupted", 8.0)
    assert web2.spans[-1] == timeline.Span(timeline.WAITING_TURN, 0.4, 8.0)
    assert web2.ended == "untouched" and web2.busy == pytest.approx(0.4)


def test_a_retried_node_waited_for_the_user_and_that_is_not_its_own_time() -> None:
    marks = [
        ["restarting", 0.0],
        ["failed", 1.0],
        ["draining", 8.0],
        ["restarting", 8.5],
        ["done", 9.5],
    ]
    [node] = timeline.of(read({"hosts": {"web1": {"phases": marks}}})).nodes
    assert node.totals() == pytest.approx(
        {"restarting": 2.0, timeline.WAITING_USER: 7.0, "draining": 0.5}
    )
    assert node.busy == pytest.approx(2.5) and node.ended == "done"


def test_a_blue_green_colour_verified_then_switched_waited_for_the_switch() -> None:
    marks = [["waiting for /status", 0.0], ["done", 2.0], ["switching", 2.5], ["done", 2.7]]
    [node] = timeline.of(read({"hosts": {"web1:green": {"phases": marks}}})).nodes
    assert node.totals() == pytest.approx(
        {"waiting for /status": 2.0, timeline.WAITING_SWITCH: 0.5, "switching": 0.2}
    )


def test_every_phase_has_a_colour_or_a_mark() -> None:
    assert all(
        p.value in timeline.COLOURS or p.value in timeline.ENDS
        for p in Phase
        if p not in (Phase.STAGED, Phase.PENDING)
    )
    assert all(wait in timeline.COLOURS for wait in timeline.WAITS)


@pytest.mark.parametrize(
    "hosts",
    [
        ["not", "a", "mapping"],
        {"web1": None},
        {"web1": {"phases": [["restarting"], ["done", None], "x", ["done", "soon"]]}},
    ],
)
def test_a_damaged_record_is_left_out_not_fatal(hosts: object) -> None:
    entry = {"seconds": "?", "hosts": hosts}
    assert timeline.of(read(entry)).nodes == ()
    assert "0.0 s" in timeline.title(1, read(entry))


def test_the_last_run_with_phases_is_the_default() -> None:
    records = [read(RUN), read(REFUSED)]
    assert timeline.chosen(records, 0, "h") == (1, read(RUN))
    assert timeline.chosen(records, 1, "h") == (1, read(RUN))


@pytest.mark.parametrize(
    ("entries", "run", "message"),
    [
        ([REFUSED], 0, "h records no run with per-node phases yet"),
        ([RUN], 2, "--run 2: h holds runs 1 to 1"),
        ([], 2, "--run 2: h records no run yet"),
        ([RUN, REFUSED], 2, "--run 2: that deploy was refused before it touched a node"),
        ([RUN, {"action": "retire", "outcome": "ok"}], 2, "a retire goes through no deploy"),
    ],
)
def test_a_run_without_phases_is_refused_clearly(
    entries: list[dict[str, object]], run: int, message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        timeline.chosen([read(e) for e in entries], run, "h")


def test_the_picture_goes_to_svg_or_html_only(tmp_path: Path) -> None:
    assert timeline.destination(None, 7) == Path("timeline-7.html")
    with pytest.raises(UsageError, match=r"--output t.png: the picture is written as .svg"):
        timeline.destination("t.png", 7)
    with pytest.raises(UsageError, match=r"there is no directory .*; create it"):
        timeline.destination(str(tmp_path / "missing" / "t.svg"), 7)
    (tmp_path / "t.html").mkdir()
    with pytest.raises(UsageError, match=r"t.html: cannot write it \(Is a directory\)"):
        timeline.write(timeline.of(read(RUN)), "t", tmp_path / "t.html")


def test_the_svg_is_a_picture_of_every_node(tmp_path: Path) -> None:
    path = tmp_path / "t.svg"
    timeline.write(timeline.of(read(RUN)), timeline.title(3, read(RUN)), path)
    root = ET.parse(path).getroot()  # well-formed
    assert root.tag.endswith("svg")
    text = path.read_text()
    assert "<!-- web1 -->" in text and "<!-- web2 -->" in text  # matplotlib names its labels
    assert "<!-- waiting for its turn -->" in text and "<!-- failed -->" in text


def test_the_same_run_draws_the_same_bytes(tmp_path: Path) -> None:
    entry = RUN | {"artifact": "app-$x$.war"}  # no math read in a title
    first = timeline.svg(timeline.of(read(entry)), timeline.title(3, read(entry)))
    assert first == timeline.svg(timeline.of(read(entry)), timeline.title(3, read(entry)))
    assert "<dc:date>" not in first


def test_the_page_carries_the_picture_and_the_slowest_node_first(tmp_path: Path) -> None:
    path = tmp_path / "t.html"
    timeline.write(timeline.of(read(RUN)), timeline.title(3, read(RUN)), path)
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "<?xml" not in text
    assert not re.search(r'(src|href)="https?:', text)  # nothing fetched from elsewhere
    assert "<script" not in text and "<link" not in text
    assert text.index("<tr><td>web2</td>") < text.index("<tr><td>web1</td>")
    assert "<td>4.80</td>" in text  # web2 waited 4.8 s for its /status


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """An app directory whose history holds a refused run, then RUN, then a refused one."""
    path = tmp_path / "shop"
    path.mkdir()
    (path / ".config").write_text("[deploy]\nhosts = web1, web2\nuser = u\n")
    lines = [json.dumps(e) for e in (REFUSED, RUN, REFUSED)]
    (path / ".deploy-history.jsonl").write_text("\n".join(lines) + "\n")
    return path


def test_history_numbers_the_runs_also_past_the_limit(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(["history", "--limit", "2", "--json"], shop, capsys)
    assert [e["run"] for e in json.loads(result.out)] == [2, 3]
    table = run(["history", "-n", "2"], shop, capsys).out.splitlines()
    assert [line.split()[0] for line in table[1:]] == ["2", "3"]


def test_report_as_json_draws_nothing_unless_asked(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(["report", "--json"], shop, capsys)  # the last run with phases: #2
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert data["run"] == 2 and data["picture"] is None
    assert [(n["node"], n["ended"], n["at"]) for n in data["nodes"]] == [
        ("web1", "done", 4.2),
        ("web2", "failed", 9.4),
    ]
    assert not list(shop.glob("timeline-*"))
    refused = run(["report", "--run", "3"], shop, capsys)
    assert refused.code == ExitCode.USAGE
    assert "--run 3: that deploy was refused before it touched a node" in refused.err
