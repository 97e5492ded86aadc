"""Which limit fired when a node was not ready in time: the key, where it is set, what
the node needed before, and what would have been enough."""

from __future__ import annotations

from pathlib import Path

from fabfile.app.config import AppConfig
from fabfile.engine import readiness, strategies
from fabfile.records import metrics
from fabfile.records.history import Action, HostRecord, Record, Result


def load(tmp_path: Path, *lines: str) -> AppConfig:
    path = tmp_path / ".config"
    path.write_text("\n".join(["[deploy]", "hosts = web1, web2", *lines]) + "\n")
    return strategies.load(path, app="shop")


def runs(*times: float | None, host: str = "web1") -> list[Record]:
    return [
        Record(Action.DEPLOY, Result.OK, "shop.war", hosts={host: HostRecord("deployed", "", 0, t)})
        for t in times
    ]


def test_it_names_the_key_and_its_line(tmp_path: Path) -> None:
    config = load(tmp_path, "ready_timeout = 4")
    said = readiness.missed(config, config.nodes[0], runs(6.2, None, 7.9))
    assert (
        f"The limit was ready_timeout = 4 s ({tmp_path / '.config'}:3: [deploy] ready_timeout)."
        in said
    )
    assert "web1 took 6.2 s, 7.9 s from restart to ready" in said
    assert "ready_timeout = 16 (2x the p95 of its recorded starts) would be enough" in said


def test_the_suggestion_is_the_one_deploy_history_stats_makes(tmp_path: Path) -> None:
    """One rule for both: 2x the p95, so one freak start among many sets no limit."""
    times = [10.0] * 19 + [100.0]
    config = load(tmp_path, "ready_timeout = 12")
    said = readiness.missed(config, config.nodes[0], runs(*times))
    assert metrics.suggested_ready_timeout(times, 12) == 20
    assert "ready_timeout = 20 (2x the p95 of its recorded starts) would be enough" in said
    stats = metrics.NodeReady("web1", tuple(times), 12)
    assert stats.suggested == 20


def test_a_host_section_wins_and_the_default_says_so(tmp_path: Path) -> None:
    config = load(tmp_path, "[host:web2]", "ready_timeout = 9")
    web1, web2 = config.nodes
    assert "[host:web2] ready_timeout" in config.origin(web2, "ready_timeout")
    assert config.origin(web1, "ready_timeout").startswith("the default, 60: not set in ")


def test_a_start_slower_than_any_recorded_gets_no_number(tmp_path: Path) -> None:
    config = load(tmp_path, "ready_timeout = 15")
    said = readiness.missed(config, config.nodes[0], runs(2.0, 2.4, host="web1"))
    assert "15 s leaves room for its recorded starts (2x their p95)" in said
    assert "never became ready" in said and "would be enough" not in said


def test_a_node_never_recorded_says_nothing_tells_what_it_needs(tmp_path: Path) -> None:
    config = load(tmp_path, "ready_timeout = 15")
    said = readiness.missed(config, config.nodes[0], runs(2.0, host="web2"))
    assert "No start of web1 is recorded yet" in said
