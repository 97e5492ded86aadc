"""A picture of one run: when each node was in which phase.

The history keeps, per node, when each phase began (seconds since the run
started; `fabfile.records.history.HostRecord.phases`). A phase lasts until the next one
begins. A node's last phase is how it ended (done, failed, ...), drawn as a
mark; a run that stopped while a node was mid-phase closes that phase at the
run's end and marks the node with its recorded outcome. An end that is not the
last (a failure the user retried, a blue/green colour verified and then
switched) is a wait, not work: it is drawn pale and not counted as the node's
own time.

matplotlib draws the picture (imported only here, only when one is asked for:
it takes half a second) as an SVG, or as a self-contained HTML page that carries
the SVG and a table of where each node's time went. It is not part of the base
install but of the ``report`` extra (`EXTRA`): without it, the table alone.
"""

from __future__ import annotations

import dataclasses
import html
import importlib.util
import io
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..engine.phase import Phase
from ..errors import UsageError
from ..records.history import Action, HostRecord, Record, Result

EXTRA = "pip install 'wardeploy[report]'"  # what adds matplotlib to an install

WAITING_TURN = "waiting for its turn"  # staged or pending: at batch 1, most of a run
WAITING_USER = "waiting for you"  # failed, then retried (guided failure)
WAITING_SWITCH = "verified, waiting"  # blue/green: verified, then switched
WAITS = (WAITING_TURN, WAITING_USER, WAITING_SWITCH)

COLOURS = {
    WAITING_TURN: "#e8e8e8",
    WAITING_USER: "#f4c7c3",
    WAITING_SWITCH: "#cfe8cc",
    Phase.CHECKING.value: "#9ecae1",
    Phase.STAGING.value: "#4c78a8",
    Phase.DRAINING.value: "#b279a2",
    Phase.INSTALLING.value: "#f2cf5b",
    Phase.RESTARTING.value: "#f58518",
    Phase.DEPLOYING.value: "#e8710a",
    Phase.WAITING.value: "#ffbf79",  # the new JVM starting: the restart's colour, paler
    Phase.WARMING.value: "#54a24b",
    Phase.SWITCHING.value: "#72b7b2",
}
ENDS = {  # how a node ended: a mark's colour and shape
    Phase.DONE.value: ("#2e7d32", "o"),
    Phase.SKIPPED.value: ("#2e7d32", "o"),
    Phase.FAILED.value: ("#c62828", "X"),
    "interrupted": ("#6d4c41", "X"),
    "untouched": ("#9e9e9e", "|"),
}
_HELD = {  # an end phase followed by more phases: what the node was doing meanwhile
    Phase.FAILED.value: WAITING_USER,
    Phase.DONE.value: WAITING_SWITCH,
    Phase.SKIPPED.value: WAITING_SWITCH,
}
_RENAMED = {Phase.STAGED.value: WAITING_TURN, Phase.PENDING.value: WAITING_TURN}
_ORDER = [WAITING_TURN, *(p.value for p in Phase), WAITING_USER, WAITING_SWITCH]


@dataclasses.dataclass(frozen=True)
class Span:
    """One node in one phase, from ``start`` to ``end`` seconds into the run."""

    phase: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclasses.dataclass(frozen=True)
class NodeTime:
    """One node's run: its spans and how it ended (``ended`` '' when not known)."""

    node: str
    spans: tuple[Span, ...]
    ended: str = ""
    at: float | None = None

    def totals(self) -> dict[str, float]:
        """Seconds in each phase (a phase entered twice, as on a retry, adds up)."""
        totals: dict[str, float] = {}
        for span in self.spans:
            totals[span.phase] = totals.get(span.phase, 0.0) + span.seconds
        return totals

    @property
    def busy(self) -> float:
        """The node's own time: every phase but the waits."""
        return sum(s.seconds for s in self.spans if s.phase not in WAITS)


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Every node's run, in the order the run recorded them."""

    nodes: tuple[NodeTime, ...]
    # (seconds into the run, verdict); None: an older record kept no time
    verdicts: tuple[tuple[float | None, str], ...] = ()

    @property
    def seconds(self) -> float:
        times = [s.end for n in self.nodes for s in n.spans]
        return max(times + [n.at for n in self.nodes if n.at is not None], default=0.0)

    def phases(self) -> list[str]:
        """The phases that occur, in the order a run goes through them."""
        present = {s.phase for n in self.nodes for s in n.spans}
        return [p for p in _ORDER if p in present]

    def columns(self) -> list[str]:
        """The phases a table shows: the node's own work, not its waits."""
        return [p for p in self.phases() if p not in WAITS]


def when(at: float | None) -> str:
    """A verdict's time as the report shows it."""
    return "time not recorded" if at is None else f"{at:.1f} s"


def of(record: Record) -> Timeline:
    """The timeline of one run (no nodes when it recorded no phases; the history's
    reader has left out a damaged host record or mark)."""
    nodes = []
    for node, host in record.hosts.items():
        marks = sorted(host.phases, key=lambda m: m[1])
        if marks:
            nodes.append(_node(node, marks, host, record.seconds))
    return Timeline(tuple(nodes), record.verdicts)


def _node(
    node: str, marks: list[tuple[str, float]], host: HostRecord, run_end: float | None
) -> NodeTime:
    spans = [
        Span(_HELD.get(phase, _RENAMED.get(phase, phase)), start, end)
        for (phase, start), (_, end) in itertools.pairwise(marks)
    ]
    last, at = marks[-1]
    if last in ENDS:
        return NodeTime(node, tuple(spans), last, at)
    # the run stopped with the node in this phase: it lasted to the run's end
    end = max(run_end or at, at)
    spans.append(Span(_RENAMED.get(last, last), at, end))
    outcome = host.outcome
    return NodeTime(node, tuple(spans), outcome if outcome in ENDS else "", end)


def drawable() -> bool:
    """Whether this install can draw the picture (matplotlib is there), without the half
    second of importing it."""
    return importlib.util.find_spec("matplotlib") is not None


def svg(timeline: Timeline, title: str) -> str:
    """The timeline drawn as an SVG document: a row per node, a bar per phase."""
    import matplotlib
    from matplotlib.figure import Figure

    rows = len(timeline.nodes)
    figure = Figure(figsize=(11, 1.6 + 0.28 * rows))  # no pyplot: no backend, no global state
    axes = figure.subplots()
    _bars(axes, timeline)
    axes.set_yticks(range(rows), [n.node for n in timeline.nodes], fontsize=8, parse_math=False)
    axes.set_ylim(rows - 0.5, -0.5)  # the first node on top
    axes.set_xlim(0, max(timeline.seconds * 1.02, 0.1))
    axes.set_xlabel("seconds since the start of the run")
    axes.set_title(title, fontsize=10, loc="left", parse_math=False)
    axes.grid(axis="x", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.legend(handles=_legend(timeline), loc="upper left", bbox_to_anchor=(1.01, 1))
    out = io.StringIO()
    # A fixed salt for the ids matplotlib makes, and no date: the same run, the same bytes.
    with matplotlib.rc_context({"svg.hashsalt": "deploy-report"}):
        figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    return out.getvalue()


def _bars(axes: Any, timeline: Timeline) -> None:
    """A row per node: its phases as bars, how it ended as a mark."""
    for row, node in enumerate(timeline.nodes):
        by_phase: dict[str, list[tuple[float, float]]] = {}
        for span in node.spans:
            by_phase.setdefault(span.phase, []).append((span.start, max(span.seconds, 0.02)))
        for phase, bars in by_phase.items():
            axes.broken_barh(bars, (row - 0.38, 0.76), facecolors=COLOURS.get(phase, "#bdbdbd"))
        if node.ended and node.at is not None:
            colour, marker = ENDS[node.ended]
            axes.plot([node.at], [row], marker=marker, color=colour, markersize=6)


def _legend(timeline: Timeline) -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [
        Patch(color=COLOURS.get(p, "#bdbdbd"), label=p) for p in timeline.phases()
    ]
    ends = dict.fromkeys(n.ended for n in timeline.nodes if n.ended)
    handles += [
        Line2D([], [], color=ENDS[e][0], marker=ENDS[e][1], linestyle="", label=e) for e in ends
    ]
    return handles


def page(timeline: Timeline, title: str, picture: str) -> str:
    """A self-contained HTML page: the picture inline and a table of each node's
    seconds per phase, the slowest node first."""
    columns = timeline.columns()
    head = "".join(f"<th>{html.escape(p)}</th>" for p in columns)
    rows = []
    for node in sorted(timeline.nodes, key=lambda n: n.busy, reverse=True):
        totals = node.totals()
        cells = "".join(
            f"<td>{totals[p]:.2f}</td>" if p in totals else "<td></td>" for p in columns
        )
        rows.append(
            f"<tr><td>{html.escape(node.node)}</td>{cells}"
            f"<td>{node.busy:.2f}</td><td>{html.escape(node.ended)}</td></tr>"
        )
    svg_body = picture[picture.index("<svg") :]  # inline: no XML declaration or doctype
    verdicts = "".join(
        f"<li>{when(at)}: {html.escape(text)}</li>\n" for at, text in timeline.verdicts
    )
    return _PAGE.format(
        title=html.escape(title),
        picture=svg_body,
        head=head,
        rows="\n".join(rows),
        verdicts=f"<h2>Verdicts</h2>\n<ul>\n{verdicts}</ul>" if verdicts else "",
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
{verdicts}
</body>
</html>
"""


def chosen(records: Sequence[Record], run: int, where: str) -> tuple[int, Record]:
    """The run ``run`` names (its # in `deploy history`, from 1), or with 0 the last one
    that recorded its nodes' phases."""
    if not run:
        for number in range(len(records), 0, -1):
            if of(records[number - 1]).nodes:
                return number, records[number - 1]
        raise UsageError(
            f"{where} records no run with per-node phases yet: deploy first, then `deploy report`"
        )
    if not records:
        raise UsageError(f"--run {run}: {where} records no run yet")
    if not 1 <= run <= len(records):
        raise UsageError(
            f"--run {run}: {where} holds runs 1 to {len(records)}; `deploy history` "
            "shows their numbers (#)"
        )
    record = records[run - 1]
    if not of(record).nodes:
        raise UsageError(f"--run {run}: {_why_no_phases(record)}; `deploy history` lists the runs")
    return run, record


def _why_no_phases(record: Record) -> str:
    action, outcome = record.action or "?", record.outcome or "?"
    if record.outcome == Result.REFUSED:
        return f"that {action} was refused before it touched a node"
    if record.action in (Action.RETIRE, Action.LOGGING):
        return f"a {action} goes through no deploy phases on the nodes"
    return f"that {action} ({outcome}) kept no phases (runs before this version kept none)"


def title(number: int, record: Record) -> str:
    """The run as a line: which, what, how it ended, how long, when, by whom."""
    seconds = record.seconds or 0.0
    return (
        f"#{number} {record.action or '?'} {record.artifact} "
        f"({record.outcome or '?'}, {seconds:.1f} s, "
        f"{record.finished}, by {record.user or '?'})"
    )


def destination(output: str | None, number: int) -> Path:
    """Where the picture goes: ``--output`` (.svg or .html), else timeline-N.html here."""
    path = Path(output).expanduser() if output else Path(f"timeline-{number}.html")
    if path.suffix.lower() not in (".svg", ".html", ".htm"):
        raise UsageError(f"--output {output}: the picture is written as .svg or .html")
    if not path.parent.is_dir():
        raise UsageError(
            f"--output {output}: there is no directory {path.parent}; create it or name "
            "a file in another"
        )
    return path


def write(timeline: Timeline, heading: str, path: Path) -> None:
    """Draw the picture into ``path``: an SVG, or an HTML page carrying it."""
    picture = svg(timeline, heading)
    text = picture if path.suffix.lower() == ".svg" else page(timeline, heading, picture)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageError(
            f"--output {path}: cannot write it ({error.strerror}); name another file with --output"
        ) from None


def rows(timeline: Timeline) -> list[dict[str, Any]]:
    """Per node: seconds per phase, its own time, how it ended (for the table and JSON)."""
    return [
        {
            "node": node.node,
            "phases": {p: round(s, 3) for p, s in node.totals().items()},
            "busy": round(node.busy, 3),
            "ended": node.ended or None,
            "at": round(node.at, 3) if node.at is not None else None,
        }
        for node in timeline.nodes
    ]
