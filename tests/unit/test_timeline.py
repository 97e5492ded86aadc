"""The timeline of a run, from the phases the history recorded per node."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fabfile import timeline
from fabfile.errors import UsageError

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


def test_each_phase_lasts_until_the_next_begins() -> None:
    line = timeline.of(RUN)
    assert line.nodes == ("web1", "web2")
    web1 = line.totals("web1")
    assert web1["waiting for /status"] == pytest.approx(2.0)
    assert web1["staged"] == pytest.approx(0.1)
    assert line.ends == (("web1", "done", 4.2), ("web2", "failed", 9.4))
    assert line.busy("web2") == pytest.approx(9.4 - 3.8)  # its wait for its turn is not its own
    assert line.seconds == pytest.approx(9.4)


def test_a_node_stopped_mid_phase_shows_where_it_was() -> None:
    entry = {"hosts": {"web1": {"phases": [["pre-flight", 0.0], ["restarting", 0.3]]}}}
    line = timeline.of(entry)
    assert line.ends == ()
    assert line.spans[-1] == timeline.Span("web1", "restarting", 0.3, 0.3)


def test_the_last_run_with_phases_is_the_default() -> None:
    assert timeline.chosen([RUN, REFUSED], 0, "h") == (1, RUN)
    assert timeline.chosen([RUN, REFUSED], 1, "h") == (1, RUN)


@pytest.mark.parametrize(
    ("entries", "run", "message"),
    [
        ([REFUSED], 0, "h records no run with per-node phases yet"),
        ([RUN], 2, "--run 2: h holds runs 1 to 1"),
        ([RUN, REFUSED], 2, "--run 2 (deploy, refused) recorded no node's phases"),
    ],
)
def test_a_run_without_phases_is_refused_clearly(
    entries: list[dict[str, object]], run: int, message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        timeline.chosen(entries, run, "h")


def test_the_picture_goes_to_svg_or_html_only(tmp_path: Path) -> None:
    assert timeline.destination(None, 7) == Path("timeline-7.html")
    with pytest.raises(UsageError, match=r"--output t.png: the picture is written as .svg"):
        timeline.destination("t.png", 7)
    with pytest.raises(UsageError, match="no directory"):
        timeline.destination(str(tmp_path / "missing" / "t.svg"), 7)


def test_the_svg_is_a_picture_of_every_node(tmp_path: Path) -> None:
    path = tmp_path / "t.svg"
    timeline.write(timeline.of(RUN), timeline.title(3, RUN), path)
    root = ET.parse(path).getroot()  # well-formed
    assert root.tag.endswith("svg")
    text = path.read_text()
    assert "<!-- web1 -->" in text and "<!-- web2 -->" in text  # matplotlib names its labels
    assert "<!-- waiting for its turn -->" in text and "<!-- failed -->" in text
    assert "Date" not in text.split("</metadata>")[0].split("<metadata>")[-1]


def test_the_page_carries_the_picture_and_the_slowest_node_first(tmp_path: Path) -> None:
    path = tmp_path / "t.html"
    timeline.write(timeline.of(RUN), timeline.title(3, RUN), path)
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "<?xml" not in text
    assert not re.search(r'(src|href)="https?:', text)  # nothing fetched from elsewhere
    assert "<script" not in text and "<link" not in text
    assert text.index("<tr><td>web2</td>") < text.index("<tr><td>web1</td>")
    assert "<td>4.80</td>" in text  # web2 waited 4.8 s for its /status
