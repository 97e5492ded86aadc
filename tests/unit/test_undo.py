"""The "To roll back" line appears only when a rollback has something to go back to;
``deploy history --json`` for scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabfile.app.appdir import AppDir
from fabfile.app.release import Release
from fabfile.commands.options import Options
from fabfile.engine import planning
from fabfile.records.history import Action, History, Record, Result
from sandbox.sample import build_war
from tests.cli import run
from tests.unit.helpers import release

APP = "shop"


def options(tmp_path: Path) -> Options:
    app = tmp_path / APP
    app.mkdir(exist_ok=True)
    (app / ".config").write_text("[deploy]\nhosts = web1\nuser = u\n")
    return Options(AppDir(app))


def undo(chosen: Options, planned: Release) -> str:
    return planning.undo_line(chosen.app, planned, chosen.command("rollback"))


def test_nothing_to_go_back_to_says_so(tmp_path: Path) -> None:
    said = undo(options(tmp_path), release(5))
    assert said == "There is no earlier release to roll back to (no history and no older WAR here)."


def test_an_older_war_in_the_app_directory_is_something_to_go_back_to(tmp_path: Path) -> None:
    chosen = options(tmp_path)
    build_war("1.0.4", chosen.app.path, artifact_id=APP)
    assert undo(chosen, release(5)).startswith("To roll back: deploy rollback --app-dir ")


def test_a_newer_war_alone_is_not(tmp_path: Path) -> None:
    chosen = options(tmp_path)
    build_war("1.0.6", chosen.app.path, artifact_id=APP)
    assert undo(chosen, release(5)).startswith("There is no earlier release")


def test_an_earlier_release_in_the_history_is(tmp_path: Path) -> None:
    chosen = options(tmp_path)
    History(chosen.app.history_path).append(
        Record(Action.DEPLOY, Result.OK, "shop-1.0.9.war", release=release(9))
    )
    assert undo(chosen, release(9)).startswith("There is no earlier release")
    assert undo(chosen, release(5)).startswith("To roll back: ")


def test_history_prints_json_for_scripts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = options(tmp_path)
    History(chosen.app.history_path).append(
        Record(Action.DEPLOY, Result.OK, "shop-1.0.9.war", release=release(9))
    )
    result = run(["history", "--json"], chosen.app.path, capsys)
    assert result.code == 0, result.text
    entries = json.loads(result.out)
    assert [(e["action"], e["outcome"], e["version"]) for e in entries] == [
        ("deploy", "ok", "1.0.9")
    ]
    (tmp_path / "other").mkdir()
    empty = run(["history", "-j"], options(tmp_path / "other").app.path, capsys)
    assert json.loads(empty.out) == []
