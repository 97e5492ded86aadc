"""A picture of one run: when each node was in which phase.

The history keeps, per node, when each phase began (seconds since the run
started; `fabfile.history.HostRecord.phases`). A phase lasts until the next
one begins; the last one (done, failed, ...) is an end, drawn as a mark. The
picture is drawn by matplotlib (imported only here, only when a picture is
asked for: it takes half a second) as an SVG, or as a self-contained HTML page
that carries the SVG and a table of where each node's time went.
"""

from __future__ import annotations

import dataclasses
import html
import io
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import UsageError
from .history import Entry
from .phase import Phase

# What a bar means; waiting for its turn (staged, pending) is drawn pale, not hidden:
# at batch 1 most of a node's run is that wait.
COLOURS = {
    Phase.CHECKING.value: "#9ecae1",
    Phase.STAGING.value: "#4c78a8",
    Phase.STAGED.value: "#e8e8e8",
    Phase.PENDING.value: "#e8e8e8",
    Phase.DRAINING.value: "#b279a2",
    Phase.INSTALLING.value: "#f2cf5b",
    Phase.RESTARTING.value: "#f58518",
    Phase.DEPLOYING.value: "#f58518",
    Phase.WAITING.value: "#ffbf79",  # the new JVM starting: the restart's own colour, paler
    Phase.WARMING.value: "#54a24b",
    Phase.SWITCHING.value: "#72b7b2",
}
WAITING_TURN = (Phase.STAGED.value, Phase.PENDING.value)
ENDS = {
    Phase.DONE.value: ("#2e7d32", "o"),
    Phase.SKIPPED.value: ("#2e7d32", "o"),
    Phase.FAILED.value: ("#c62828", "X"),
    Phase.INTERRUPTED.value: ("#6d4c41", "X"),
}


@dataclasses.dataclass(frozen=True)
class Span:
    """One node in one phase, from ``start`` to ``end`` seconds into the run."""

    node: str
    phase: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Every node's spans and how each ended, in the order the run recorded them."""

    spans: tuple[Span, ...]
    ends: tuple[tuple[str, str, float], ...]  # node, final phase, when
    nodes: tuple[str, ...]

    @property
    def seconds(self) -> float:
        times = [s.end for s in self.spans] + [t for _, _, t in self.ends]
        return max(times, default=0.0)

    def totals(self, node: str) -> dict[str, float]:
        """Seconds the node spent in each phase (a phase entered twice, as on a retry,
        adds up)."""
        totals: dict[str, float] = {}
        for span in self.spans:
            if span.node == node:
                totals[span.phase] = totals.get(span.phase, 0.0) + span.seconds
        return totals

    def busy(self, node: str) -> float:
        """The node's own time: every phase but waiting for its turn."""
        return sum(s for p, s in self.totals(node).items() if p not in WAITING_TURN)

    def phases(self) -> list[str]:
        """The phases that occur, in the order a run goes through them."""
        present = {s.phase for s in self.spans}
        return [p.value for p in Phase if p.value in present]


def of(entry: Entry) -> Timeline:
    """The timeline of one history entry (empty when it recorded no phases)."""
    spans: list[Span] = []
    ends: list[tuple[str, str, float]] = []
    nodes = []
    for node, record in (entry.get("hosts") or {}).items():
        marks = [(str(p), float(t)) for p, t in record.get("phases") or ()]
        if not marks:
            continue
        nodes.append(node)
        for (phase, start), (_, end) in itertools.pairwise(marks):
            spans.append(Span(node, phase, start, end))
        last, at = marks[-1]
        if last in ENDS:
            ends.append((node, last, at))
        else:  # the run stopped while the node was in this phase
            spans.append(Span(node, last, at, at))
    return Timeline(tuple(spans), tuple(ends), tuple(nodes))


def svg(timeline: Timeline, title: str) -> str:
    """The timeline drawn as an SVG document: a row per node, a bar per phase."""
    import matplotlib

    matplotlib.use("svg")  # no screen: never a GUI backend
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    nodes = list(timeline.nodes)
    figure, axes = plt.subplots(figsize=(11, 1.6 + 0.28 * len(nodes)))
    try:
        for phase in timeline.phases():
            mine = [s for s in timeline.spans if s.phase == phase]
            for row, node in enumerate(nodes):
                bars = [(s.start, max(s.seconds, 0.02)) for s in mine if s.node == node]
                if bars:
                    axes.broken_barh(bars, (row - 0.38, 0.76), facecolors=COLOURS.get(phase))
        for node, phase, at in timeline.ends:
            colour, marker = ENDS[phase]
            axes.plot([at], [nodes.index(node)], marker=marker, color=colour, markersize=6)
        axes.set_yticks(range(len(nodes)), nodes, fontsize=8)
        axes.set_ylim(len(nodes) - 0.5, -0.5)  # first node on top
        axes.set_xlim(0, max(timeline.seconds * 1.02, 0.1))
        axes.set_xlabel("seconds since the start of the run")
        axes.set_title(title, fontsize=10, loc="left")
        axes.grid(axis="x", color="#dddddd", linewidth=0.6)
        axes.set_axisbelow(True)
        handles: list[Any] = [
            Patch(color=COLOURS.get(p), label=_label(p)) for p in _legend(timeline.phases())
        ]
        handles += [
            Line2D([], [], color=ENDS[p][0], marker=ENDS[p][1], linestyle="", label=p)
            for p in dict.fromkeys(phase for _, phase, _ in timeline.ends)
        ]
        axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        out = io.StringIO()
        # No date in the file: the same run draws the same bytes.
        figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        plt.close(figure)
    return out.getvalue()


def _legend(phases: Sequence[str]) -> list[str]:
    """One entry per colour: staged and pending are both 'waiting for its turn'."""
    shown: list[str] = []
    for phase in phases:
        if phase in WAITING_TURN and any(p in WAITING_TURN for p in shown):
            continue
        if phase == Phase.DEPLOYING.value and Phase.RESTARTING.value in shown:
            continue
        shown.append(phase)
    return shown


def _label(phase: str) -> str:
    return "waiting for its turn" if phase in WAITING_TURN else phase


def page(timeline: Timeline, title: str, picture: str) -> str:
    """A self-contained HTML page: the picture inline and a table of each node's
    seconds per phase, the slowest node first."""
    phases = [p for p in timeline.phases() if p not in WAITING_TURN]
    head = "".join(f"<th>{html.escape(p)}</th>" for p in phases)
    rows = []
    for node in sorted(timeline.nodes, key=timeline.busy, reverse=True):
        totals = timeline.totals(node)
        end = next((p for n, p, _ in timeline.ends if n == node), "")
        cells = "".join(f"<td>{totals[p]:.2f}</td>" if p in totals else "<td></td>" for p in phases)
        rows.append(
            f"<tr><td>{html.escape(node)}</td>{cells}"
            f"<td>{timeline.busy(node):.2f}</td><td>{html.escape(end)}</td></tr>"
        )
    svg_body = picture[picture.index("<svg") :]  # inline: no XML declaration or doctype
    return _PAGE.format(
        title=html.escape(title),
        picture=svg_body,
        head=head,
        rows="\n".join(rows),
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ padding: 0.2em 0.7em; text-align: right; border-bottom: 1px solid #ddd; }}
th:first-child, td:first-child, td:last-child {{ text-align: left; }}
svg {{ max-width: 100%; height: auto; }}
</style>
</head>
<body>
<h1>{title}</h1>
{picture}
<h2>Seconds per phase, the slowest node first</h2>
<table>
<tr><th>node</th>{head}<th>busy</th><th>ended</th></tr>
{rows}
</table>
</body>
</html>
"""


def chosen(entries: Sequence[Entry], run: int, where: str) -> tuple[int, Entry]:
    """The run ``run`` names (its # in `deploy history`, from 1), or with 0 the last one
    that recorded its nodes' phases."""
    if not run:
        for number in range(len(entries), 0, -1):
            if of(entries[number - 1]).nodes:
                return number, entries[number - 1]
        raise UsageError(
            f"{where} records no run with per-node phases yet: deploy first, then `deploy report`"
        )
    if not 1 <= run <= len(entries):
        raise UsageError(
            f"--run {run}: {where} holds runs 1 to {len(entries)}; `deploy history` "
            "shows their numbers (#)"
        )
    if not of(entries[run - 1]).nodes:
        raise UsageError(
            f"--run {run} ({entries[run - 1].get('action', '?')}, "
            f"{entries[run - 1].get('outcome', '?')}) recorded no node's phases: a refused "
            "run touches no node, and runs before this version of the tool kept none"
        )
    return run, entries[run - 1]


def title(number: int, entry: Entry) -> str:
    return (
        f"#{number} {entry.get('action', '?')} {entry.get('artifact', '')} "
        f"({entry.get('outcome', '?')}, {entry.get('seconds', 0):.1f} s, "
        f"{entry.get('finished', '')}, by {entry.get('user', '?')})"
    )


def destination(output: str | None, number: int) -> Path:
    """Where the picture goes: ``--output`` (.svg or .html), else timeline-N.html here."""
    path = Path(output or f"timeline-{number}.html")
    if path.suffix.lower() not in (".svg", ".html", ".htm"):
        raise UsageError(f"--output {output}: the picture is written as .svg or .html")
    if not path.parent.is_dir():
        raise UsageError(f"--output {output}: no directory {path.parent}")
    return path


def write(timeline: Timeline, heading: str, path: Path) -> None:
    """Draw the picture into ``path``: an SVG, or an HTML page carrying it."""
    picture = svg(timeline, heading)
    text = picture if path.suffix.lower() == ".svg" else page(timeline, heading, picture)
    path.write_text(text, encoding="utf-8")


def rows(timeline: Timeline) -> list[dict[str, Any]]:
    """Per node: seconds per phase, its own time, how it ended (for the table and JSON)."""
    ended = {node: (phase, at) for node, phase, at in timeline.ends}
    return [
        {
            "node": node,
            "phases": {p: round(s, 3) for p, s in timeline.totals(node).items()},
            "busy": round(timeline.busy(node), 3),
            "ended": ended.get(node, ("", 0.0))[0],
            "at": round(ended.get(node, ("", 0.0))[1], 3),
        }
        for node in timeline.nodes
    ]
